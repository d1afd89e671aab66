"""Every committed history replays against the current workflow code, and the histories
are what docs/versioning.md says: one baseline of each short (pinned) workflow, recorded
without patches; the long-lived workflows' histories kept across their patches."""

import ast
import base64
import inspect
import json
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.common import VersioningBehavior
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

import orchestration.workflows as workflows
from orchestration.workflows._steps import saga
from orchestration.workflows._steps.versioning import DECLARED
from orchestration.workflows.fleet_migration import CHUNKS_PATCH
from tests import record_histories
from tests.orchestration.reordered_workflow import ReorderedProvisioningWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))
WORKFLOWS = [getattr(workflows, name) for name in workflows.__all__ if name.endswith("Workflow")]
PINNED = {w.__name__ for w in WORKFLOWS if DECLARED[w.__name__] == VersioningBehavior.PINNED}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def events(path: Path) -> list[dict]:
    return json.loads(path.read_text())["events"]


def workflow_type(path: Path) -> str:
    return events(path)[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]


def label(path: Path) -> str:
    return path.stem.rsplit("-", 1)[1]


def patches(path: Path) -> dict[str, bool]:
    """The patches a history's run took (its ``core_patch`` markers): id -> deprecated."""
    found = {}
    for event in events(path):
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") == "core_patch":
            for payload in marker["details"]["patch-data"]["payloads"]:
                data = json.loads(base64.b64decode(payload["data"]))
                found[data["id"]] = data["deprecated"]
    return found


def commands(path: Path) -> list[str]:
    """What the run did, in order: ``local:<type>`` per local activity, ``<type>`` per
    task-queue activity."""
    found = []
    for event in events(path):
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") == "core_local_activity":
            (payload,) = marker["details"]["data"]["payloads"]
            found.append(f"local:{json.loads(base64.b64decode(payload['data']))['activity_type']}")
        if scheduled := event.get("activityTaskScheduledEventAttributes"):
            found.append(scheduled["activityType"]["name"])
    return found


def named(prefix: str) -> list[Path]:
    return [p for p in HISTORIES if p.stem.rsplit("-", 1)[0] == prefix]


def recorded_scenarios() -> set[str]:
    """The history names ``tests/record_histories.py`` writes: the string literal each of
    its ``save(workflow_id, "<name>")`` calls passes."""
    tree = ast.parse(Path(record_histories.__file__).read_text())
    return {
        call.args[1].value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and getattr(call.func, "id", None) == "save"
        and len(call.args) == 2
        and isinstance(call.args[1], ast.Constant)
    }


def test_there_are_histories_of_every_workflow_and_path():
    assert {workflow_type(p) for p in HISTORIES} == {w.__name__ for w in WORKFLOWS}
    names = {p.stem.rsplit("-", 1)[0] for p in HISTORIES}
    # Every scenario the recorder writes has a history, and every history is one it writes.
    assert names == recorded_scenarios()


def test_the_short_workflows_have_one_baseline_recorded_without_patches():
    """Pinned workflows change without patches (docs/versioning.md): their histories are one
    baseline of the current code, re-recorded when it changes, and none has a patch."""
    short = [p for p in HISTORIES if workflow_type(p) in PINNED]
    assert {workflow_type(p) for p in short} == PINNED
    assert len({label(p) for p in short}) == 1, sorted(p.name for p in short)
    assert {p.stem: patches(p) for p in short if patches(p)} == {}


def test_the_short_workflows_code_has_no_patch():
    modules = {inspect.getmodule(w) for w in WORKFLOWS if w.__name__ in PINNED} | {saga}
    call = re.compile(r"\b(patched|deprecate_patch)\(")
    assert {m.__name__ for m in modules if call.search(inspect.getsource(m))} == set()


def test_a_provisioning_from_the_template_or_the_pool_is_one_local_activity():
    for path in named("provisioning-ok") + named("provisioning-pooled"):
        types = [e["eventType"] for e in events(path)]
        assert types.count("EVENT_TYPE_WORKFLOW_TASK_STARTED") == 1, path.stem
        assert commands(path) == ["local:tenant_run_steps"], path.stem
    for path in named("provisioning-by-migrations"):
        assert commands(path) == [
            "local:tenant_run_steps",
            "tenant_create_schema",
            "local:tenant_run_steps",
        ], path.stem


def test_a_superseded_provisioning_did_nothing():
    for path in named("provisioning-superseded"):
        assert commands(path) == ["local:tenant_run_steps"], path.stem
        assert events(path)[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


def test_the_fleet_chunks_patch_is_deprecated_and_runs_that_took_it_replay():
    """``fleet-chunks`` is at its ``deprecate_patch`` stage: the histories recorded before it
    are gone (they cannot replay), those recorded under ``patched`` stay until the call is
    removed, and the current code records the patch deprecated."""
    fleet = named("fleet-failed")
    assert {p.stem: patches(p).get(CHUNKS_PATCH) for p in fleet} == {
        "fleet-failed-v6": False,
        "fleet-failed-v9": True,
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays_against_current_code(path):
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(load(path))
    assert result.replay_failure is None


@pytest.mark.parametrize(
    "path", [p for p in HISTORIES if p.stem.startswith("provisioning-")], ids=lambda p: p.stem
)
async def test_a_reordered_workflow_fails_replay(path):
    replayer = Replayer(workflows=[ReorderedProvisioningWorkflow])
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(path))
