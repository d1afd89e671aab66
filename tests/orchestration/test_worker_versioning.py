"""Worker Versioning on the dev server: pinned runs stay on their build, new runs start on
the current one; the worker's start-up claim; ``manage.py temporal_deployment``."""

import ast
import asyncio
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from temporalio.api.enums.v1 import VersioningBehavior as VersioningBehaviorProto
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.workflow import _Definition

import devstack
import orchestration.workflows as workflows
from devstack.localservices import PROJECT_DIR
from orchestration import versioning
from orchestration.registry import project_registry
from orchestration.versioning import (
    DeploymentError,
    _source_files,
    deployment_claim_current,
    deployment_describe,
    deployment_set_current,
    source_build_id,
    worker_deployment_config,
)
from orchestration.workflows._steps.versioning import DECLARED, VERSIONED
from tests.kit import run_async, wait_until, wait_until_async
from tests.versioned_workflows import PinnedWaitWorkflow

POLICY = PROJECT_DIR / "docs" / "versioning.md"
BEHAVIOURS = {"pinned": VersioningBehavior.PINNED, "auto-upgrade": VersioningBehavior.AUTO_UPGRADE}


def documented_behaviours() -> dict[str, VersioningBehavior]:
    """The policy table of docs/versioning.md, read: each workflow it names (``...Workflow``
    in backticks, second column) -> the behaviour of its row (**pinned** or
    **auto-upgrade**, third column). The one list of the workflows' behaviours besides
    their declarations, which must agree with it."""
    found = {}
    for line in POLICY.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[2].strip("*") not in BEHAVIOURS:
            continue
        for name in re.findall(r"`(\w+Workflow)`", cells[1]):
            found[name] = BEHAVIOURS[cells[2].strip("*")]
    return found


EXPECTED = documented_behaviours()


def test_the_policy_table_names_every_hosted_workflow_and_both_behaviours(db):
    hosted = {cls.__name__ for h in project_registry().values() for cls in h.workflows}
    exported = {name for name in workflows.__all__ if name.endswith("Workflow")}
    assert hosted == exported  # every workflow module's class is on some worker, and only they
    assert set(EXPECTED) == hosted
    assert set(EXPECTED.values()) == set(BEHAVIOURS.values())


def test_every_project_workflow_declares_its_versioning_behaviour(db):
    hosted = [cls for h in project_registry().values() for cls in h.workflows]
    assert {cls.__name__: DECLARED[cls.__name__] for cls in hosted} == EXPECTED
    # This process is unversioned (as the test settings are): no declaration reaches the
    # server, which would refuse it from an unversioned worker.
    assert not VERSIONED
    assert {_Definition.must_from_class(cls).versioning_behavior for cls in hosted} == {
        VersioningBehavior.UNSPECIFIED
    }


def test_a_versioned_process_defines_the_declared_behaviours():
    script = (
        "import django; django.setup(); "
        "from orchestration.registry import project_registry; "
        "from temporalio.workflow import _Definition; "
        "print({c.__name__: _Definition.must_from_class(c).versioning_behavior.name "
        "for h in project_registry().values() for c in h.workflows})"
    )
    env = {**os.environ, "TEMPORAL_WORKER_VERSIONING": "true"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert ast.literal_eval(out.strip().splitlines()[-1]) == {
        name: behaviour.name for name, behaviour in EXPECTED.items()
    }


def test_off_by_default_and_the_build_id_follows_the_sources(settings):
    assert worker_deployment_config() is None
    settings.TEMPORAL_WORKER_VERSIONING = True
    settings.TEMPORAL_BUILD_ID = ""
    config = worker_deployment_config()
    assert config.version.build_id == source_build_id()
    assert source_build_id().startswith("src-")
    settings.TEMPORAL_BUILD_ID = "release-7"
    assert worker_deployment_config().version.build_id == "release-7"
    assert worker_deployment_config(build="b").version.build_id == "b"
    # What the hash covers: the code workers replay and run, extensions included.
    covered = {f"{path.parent.name}/{path.name}" for path in _source_files()}
    assert {
        "workflows/tenant_provisioning.py",
        "_steps/saga.py",
        "activities/tenants.py",
        "orchestration/worker_extension.py",
    } <= covered


def _worker(client: Client, queue: str, build: str) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[PinnedWaitWorkflow],
        deployment_config=worker_deployment_config(build=build),
    )


async def _pinned_to(handle) -> tuple[str, int]:
    """(build id, behaviour) the server records for the run, once its first task ran."""

    async def recorded():
        raw = (await handle.describe()).raw_description
        info = raw.workflow_execution_info.versioning_info
        return (info.deployment_version.build_id, info.behavior) if info.behavior else None

    return await wait_until_async(recorded, timeout=30, what="the run's first task")


PINNED = VersioningBehaviorProto.VERSIONING_BEHAVIOR_PINNED


async def test_a_pinned_run_finishes_on_its_build_while_new_runs_start_on_the_current_one(
    settings, temporal
):
    settings.TEMPORAL_WORKER_VERSIONING = True
    settings.TEMPORAL_DEPLOYMENT_NAME = f"test-{uuid.uuid4().hex[:10]}"
    queue = f"versioning-{uuid.uuid4().hex[:10]}"
    client = await Client.connect(temporal)
    worker_a, worker_b = _worker(client, queue, "a"), _worker(client, queue, "b")
    runs = [asyncio.create_task(worker_a.run())]
    try:
        # A new deployment has no current version: the first worker makes itself current.
        assert await deployment_claim_current(client, build_id="a")
        first = await client.start_workflow(
            PinnedWaitWorkflow.run, id=f"first-{queue}", task_queue=queue
        )
        assert await _pinned_to(first) == ("a", PINNED)

        runs.append(asyncio.create_task(worker_b.run()))
        # The server accepts b as current once it has seen b's pollers.
        await wait_until_async(
            lambda: _seen(client, "b"), timeout=30, what="build b's pollers to register"
        )
        await deployment_set_current(client, build_id="b")
        # b is current now: a restarted worker of either build leaves that alone.
        assert not await deployment_claim_current(client, build_id="a")
        state = await deployment_describe(client)
        assert state.current_build_id == "b"
        assert {v.build_id: v.status for v in state.versions}["a"] == "draining"

        second = await client.start_workflow(
            PinnedWaitWorkflow.run, id=f"second-{queue}", task_queue=queue
        )
        assert await _pinned_to(second) == ("b", PINNED)
        for handle in (first, second):
            await handle.signal(PinnedWaitWorkflow.release)
        # The first run's last task ran on a's worker although b was current by then.
        assert await first.result() == "a"
        assert await second.result() == "b"
    finally:
        await asyncio.gather(worker_a.shutdown(), *([worker_b.shutdown()] if len(runs) > 1 else []))
        await asyncio.gather(*runs, return_exceptions=True)


async def _seen(client: Client, build: str) -> bool:
    try:
        state = await deployment_describe(client)
    except DeploymentError:
        return False
    return any(version.build_id == build for version in state.versions)


def test_a_versioned_worker_process_claims_a_new_deployment_and_the_command_moves_it(
    start_worker, temporal, settings, monkeypatch
):
    name = f"test-{uuid.uuid4().hex[:10]}"
    settings.TEMPORAL_DEPLOYMENT_NAME = name
    monkeypatch.setenv("TEMPORAL_WORKER_VERSIONING", "true")
    monkeypatch.setenv("TEMPORAL_DEPLOYMENT_NAME", name)
    monkeypatch.setenv("TEMPORAL_BUILD_ID", "first")
    proc, log = start_worker("--kind", "tenant", "--shards", "0", "--no-relay")

    def show() -> str:
        out = io.StringIO()
        try:
            call_command("temporal_deployment", stdout=out)
        except CommandError:
            return ""
        return out.getvalue()

    shown = wait_until(
        lambda: (text := show()) and "current: first" in text and text,
        timeout=30,
        what="the worker to make its build current",
        interval=0.5,
    )
    assert f"worker deployment {name}" in shown
    assert "first  current" in shown

    # A version no worker polls for is refused unless asked for.
    with pytest.raises(CommandError, match="build ID 'second' not found"):
        call_command("temporal_deployment", "set-current", "second", stdout=io.StringIO())

    # The next build's workers start; the current version stays first until it is moved.
    monkeypatch.setenv("TEMPORAL_BUILD_ID", "second")
    proc2, log2 = start_worker("--kind", "tenant", "--shards", "0", "--no-relay")
    # Read every half second: the server allows a deployment only a few requests a second.
    wait_until(
        lambda: "second  inactive" in show(),
        timeout=30,
        what="build second's pollers",
        interval=0.5,
    )
    assert "current: first" in show()
    out = io.StringIO()
    call_command("temporal_deployment", "ramp", "second", "--percentage", "10", stdout=out)
    assert "ramping: second at 10%" in out.getvalue()
    out = io.StringIO()
    call_command("temporal_deployment", "set-current", "second", stdout=out)
    assert "current: second" in out.getvalue()
    assert "ramping:" not in out.getvalue()  # promoting the ramping version ends the ramp
    for process, output in ((proc, log), (proc2, log2)):
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, output.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set-current"], "needs the build id"),
        (["ramp", "b"], "needs --percentage"),
        (["show", "b"], "takes no build id"),
        (["set-current", "b", "--percentage", "5"], "applies to ramp only"),
    ],
)
def test_the_command_refuses_incomplete_requests(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("temporal_deployment", *args)


def test_the_command_names_an_unknown_deployment(temporal):
    with pytest.raises(CommandError, match=r"name 'nowhere-.*have polled"):
        call_command("temporal_deployment", "--deployment", f"nowhere-{uuid.uuid4().hex[:8]}")


def test_the_worker_refuses_settings_that_disagree_with_the_environment(settings):
    settings.TEMPORAL_WORKER_VERSIONING = True  # the environment (this process) says off
    with pytest.raises(CommandError, match="set it in the environment"):
        call_command("run_temporal_worker", "--no-relay")


def test_make_current_needs_versioning():
    with pytest.raises(CommandError, match="--make-current needs TEMPORAL_WORKER_VERSIONING"):
        call_command("run_temporal_worker", "--make-current", "--no-relay")


@pytest.mark.parametrize(("value", "makes_current"), [("true", True), ("", False), ("0", False)])
def test_make_dev_makes_each_worker_start_current_when_versioned(value, makes_current):
    command = devstack.worker_command({"TEMPORAL_WORKER_VERSIONING": value})
    assert ("--make-current" in command) is makes_current
    assert "--sync-schedules" in command


def test_a_busy_deployment_is_asked_again_and_a_lasting_refusal_is_named(monkeypatch):
    """The server allows a worker deployment a few requests a second: workers starting
    together meet that limit, and are not stopped by it."""
    busy = RPCError(
        "too many requests issued to Worker Deployment 'd'", RPCStatusCode.RESOURCE_EXHAUSTED, b""
    )
    calls = []

    async def answer_on_third(request):
        calls.append(request)
        if len(calls) < 3:
            raise busy
        return "answer"

    monkeypatch.setattr(versioning, "BUSY_WAIT", 5.0)
    assert asyncio.run(versioning._request("d", answer_on_third, "req")) == "answer"
    assert calls == ["req"] * 3

    async def always_busy(request):
        raise busy

    monkeypatch.setattr(versioning, "BUSY_WAIT", 0.5)
    with pytest.raises(DeploymentError, match="refused the request for deployment 'd': too many"):
        asyncio.run(versioning._request("d", always_busy, "req"))

    async def refused(request):
        raise RPCError("no such thing", RPCStatusCode.INVALID_ARGUMENT, b"")

    with pytest.raises(DeploymentError, match="no such thing"):
        asyncio.run(versioning._request("d", refused, "req"))


# --- rollout and drain ------------------------------------------------------------------------


def _deployment_command(*args: str) -> str:
    out = io.StringIO()
    call_command("temporal_deployment", *args, stdout=out)
    return out.getvalue()


async def test_rollout_moves_new_runs_and_waits_for_the_old_builds_pinned_runs(settings, temporal):
    settings.TEMPORAL_WORKER_VERSIONING = True
    settings.TEMPORAL_DEPLOYMENT_NAME = f"test-{uuid.uuid4().hex[:10]}"
    queue = f"rollout-{uuid.uuid4().hex[:10]}"
    other = f"{queue}-other"
    client = await Client.connect(temporal)
    workers = [_worker(client, queue, "a"), _worker(client, other, "a")]
    runs = [asyncio.create_task(worker.run()) for worker in workers]

    def start(worker: Worker) -> None:
        workers.append(worker)
        runs.append(asyncio.create_task(worker.run()))

    try:
        assert await deployment_claim_current(client, build_id="a")
        await wait_until_async(lambda: _seen(client, "a"), timeout=30, what="build a to poll")
        pinned = await client.start_workflow(
            PinnedWaitWorkflow.run, id=f"pinned-{queue}", task_queue=queue
        )
        assert await _pinned_to(pinned) == ("a", PINNED)

        # b polls one of a's two queues: made current, it would strand the other's new runs.
        start(_worker(client, queue, "b"))
        with pytest.raises(CommandError, match="build b to poll every task queue"):
            await asyncio.to_thread(_deployment_command, "rollout", "b", "--wait-pollers", "2")
        assert (await deployment_describe(client)).current_build_id == "a"

        # With both queues polled, b becomes current; a keeps its pinned run, so the
        # rollout fails rather than let a's workers stop.
        start(_worker(client, other, "b"))
        with pytest.raises(CommandError, match="build a still has 1 open pinned run"):
            await asyncio.to_thread(
                _deployment_command,
                "rollout",
                "b",
                "--ramp",
                "20,50",
                "--ramp-interval",
                "0.5",
                "--drain-timeout",
                "2",
            )
        state = await deployment_describe(client)
        assert (state.current_build_id, state.ramping_build_id) == ("b", "")
        fresh = await client.start_workflow(
            PinnedWaitWorkflow.run, id=f"fresh-{queue}", task_queue=queue
        )
        assert await _pinned_to(fresh) == ("b", PINNED)

        await pinned.signal(PinnedWaitWorkflow.release)
        assert await pinned.result() == "a"  # finished where it started
        shown = await asyncio.to_thread(_deployment_command, "drain", "a", "--drain-timeout", "30")
        assert "build a has no open pinned run" in shown
        # Run again (a deploy whose workflow code did not change): nothing to move.
        shown = await asyncio.to_thread(_deployment_command, "rollout", "b")
        assert "build b is current; no other version had to drain" in shown
        await fresh.signal(PinnedWaitWorkflow.release)
        assert await fresh.result() == "b"
    finally:
        await asyncio.gather(*(worker.shutdown() for worker in workers))
        await asyncio.gather(*runs, return_exceptions=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drain"], "drain needs the build id"),
        (["rollout", "b", "--ramp", "50,10"], "--ramp: rising percentages between 0 and 100"),
        (["rollout", "b", "--ramp", "100"], "--ramp: rising percentages between 0 and 100"),
        (["rollout", "b", "--ramp", "ten"], "--ramp: percentages like 10,50"),
        (["rollout", "b", "--drain-timeout", "-1"], "--drain-timeout: expected a number of"),
        (["rollout", "b", "--wait-pollers", "soon"], "a number of seconds"),
        (["ramp", "b", "--percentage", "5", "--ramp", "10"], "--ramp applies to rollout only"),
    ],
)
def test_rollout_and_drain_refuse_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("temporal_deployment", *args)


# --- deploy/rollout.sh, with a stand-in for docker ---------------------------------------------


async def _current(address: str) -> str:
    try:
        return (await deployment_describe(await Client.connect(address))).current_build_id
    except DeploymentError:
        return ""


# Containers are worker processes on this machine: `compose up --scale` starts workers of the
# "new image" (TEMPORAL_BUILD_ID=$NEW_BUILD), `exec` runs the command here, `stop` sends
# SIGTERM and waits. Every call is logged, one line each.
FAKE_DOCKER = """\
import os, signal, subprocess, sys, time
from pathlib import Path

state = Path(os.environ["FAKE_DOCKER_STATE"])
args = sys.argv[1:]
with open(state / "calls", "a") as log:
    log.write(" ".join(args) + "\\n")
running = sorted(state.glob("container-*"))
if args[:3] == ["compose", "ps", "-q"]:
    print("\\n".join(path.name for path in running))
elif args[:2] == ["compose", "up"] and "--scale" in args:
    wanted = int(args[args.index("--scale") + 1].split("=")[1])
    assert "--no-recreate" in args and wanted >= len(running), args
    for n in range(len(running), wanted):
        env = {**os.environ, "TEMPORAL_BUILD_ID": os.environ["NEW_BUILD"]}
        out = open(state / f"worker-{n}.log", "wb")
        command = ["manage.py", "run_temporal_worker", *os.environ["WORKER_ARGS"].split()]
        proc = subprocess.Popen(
            [sys.executable, *command], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        (state / f"container-new{n}").write_text(str(proc.pid))
elif args[0] == "exec":  # the container's python is this one
    env = {**os.environ, "TEMPORAL_BUILD_ID": os.environ["NEW_BUILD"]}
    command = [sys.executable if args[2] == "python" else args[2], *args[3:]]
    sys.exit(subprocess.run(command, env=env).returncode)
elif args[0] == "stop":
    pid = int((state / args[-1]).read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + float(args[args.index("--time") + 1])
    stat = Path(f"/proc/{pid}/stat")
    while time.monotonic() < deadline:  # until it exits (a zombie: its parent reaps it)
        if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.2)
elif args[0] == "rm":
    (state / args[-1]).unlink()
"""


def test_the_rollout_script_replaces_the_workers_and_makes_the_new_build_current(
    start_worker, temporal, settings, monkeypatch, tmp_path
):
    name = f"test-{uuid.uuid4().hex[:10]}"
    settings.TEMPORAL_DEPLOYMENT_NAME = name
    monkeypatch.setenv("TEMPORAL_WORKER_VERSIONING", "true")
    monkeypatch.setenv("TEMPORAL_DEPLOYMENT_NAME", name)
    monkeypatch.setenv("TEMPORAL_BUILD_ID", "first")
    worker_args = ["--kind", "tenant", "--shards", "0", "--no-relay"]
    old, old_log = start_worker(*worker_args)
    state = tmp_path / "containers"
    state.mkdir()
    (state / "container-old0").write_text(str(old.pid))
    wait_until(
        lambda: run_async(_current(temporal)) == "first",
        timeout=30,
        what="the first worker to make its build current",
        interval=0.5,
    )
    docker = tmp_path / "docker"
    docker.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    docker.chmod(0o755)
    # The old worker's environment (database, Temporal, queues), as the image gives every
    # container; the fake's `exec` and new workers run with it.
    worker_env = dict(
        line.split("=", 1)
        for line in Path(f"/proc/{old.pid}/environ").read_text().split("\0")
        if "=" in line
    )
    env = {
        **worker_env,
        "DOCKER": str(docker),
        "FAKE_DOCKER_STATE": str(state),
        "NEW_BUILD": "second",
        "WORKER_ARGS": " ".join(worker_args),
    }
    try:
        result = subprocess.run(
            [
                "sh",
                str(PROJECT_DIR / "deploy/rollout.sh"),
                "--wait-pollers",
                "60",
                "--drain-timeout",
                "30",
            ],
            env=env,
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "build second is current; first has no open pinned run" in result.stdout
        assert old.wait(5) == 0, old_log.read_text()  # stopped by the script, cleanly
        calls = (state / "calls").read_text().splitlines()
        assert [
            call.split()[0] if call.startswith(("exec", "stop", "rm")) else call for call in calls
        ] == [
            "compose ps -q worker",
            "compose build",
            "compose run --rm --no-deps migrate",
            "compose up -d --no-deps --no-recreate --scale worker=2 worker",
            "compose ps -q worker",
            "exec",
            "stop",
            "rm",
            "compose up -d --no-deps --no-recreate --scale worker=1 worker",
            "compose up -d --no-deps web",
        ]
        assert calls[6:8] == ["stop --time 75 container-old0", "rm container-old0"]
        assert [path.name for path in state.glob("container-*")] == ["container-new1"]
        assert run_async(_current(temporal)) == "second"
    finally:
        for path in state.glob("container-new*"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(path.read_text()), signal.SIGKILL)
