"""The django.tasks backend: enqueue cost, commit -> task started, fairness between tenants.

1. Enqueue cost inside a request's transaction, in a tenant's schema: ``task.enqueue()``
   (an outbox row + NOTIFY) against a plain ``Project.objects.create()``, interleaved, each
   in its own ``transaction.atomic()`` as with ``ATOMIC_REQUESTS``. Goal: <= 2x.
2. Commit -> task started: a task enqueued (autocommit) stores the wall clock when it
   began in its tenant's schema; latency = that - the clock right after commit, through
   the relay (NOTIFY), Temporal and the worker, one task at a time (the benchmark polls the
   database for the start, never Temporal). Goal: median <= 50 ms on 2 cores.
3. Fairness: tenant B's 10 tasks, commit -> finished, alone (idle), then again right after
   tenant A enqueued a backlog of 2,000 on the same queue (the worker has 4 activity slots,
   each task holds one 5 ms). Goal: B's median under load <= 2x idle, while A drains. B's
   10 go ``--rounds`` times (3) each way, one round after the other, all of the loaded
   rounds while A's backlog drains.

Starts an embedded PostgreSQL and a Temporal dev server (fairness on) unless DATABASE_URL /
TEMPORAL_ADDRESS are set, the project's workers (tenant + jobs queues) and relay in threads.

    .venv/bin/python bench/tasks.py [--enqueues 500] [--starts 100] [--backlog 2000]
        [--parts 1 2 3] [--modes default local] [--trace] [--workflow-slots N]

``--trace`` prints, for each of B's tasks in part 3, when (ms after its commit) the relay
recorded its start, and the times of its run's events in Temporal's history.
``--workflow-slots`` caps the workers' workflow-task and local-activity slots (the SDK's
default is 100 each).
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import median_p95  # noqa: E402
from devstack.localservices import (  # noqa: E402
    LOCAL_DIR,
    TemporalDevServer,
    ensure_database,
    start_postgres,
    venv_binary,
)


class Workers:
    """The project's tenant and jobs workers, one thread, one event loop."""

    def __init__(self, address: str, *, max_concurrent_activities: int, workflow_slots=None):
        self.address, self.slots, self.workflow_slots = (
            address,
            max_concurrent_activities,
            workflow_slots,
        )
        self.ready, self._stop, self._loop, self.client = threading.Event(), None, None, None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self):
        from django.conf import settings
        from temporalio.client import Client
        from temporalio.worker import Worker

        from orchestration.registry import hosted
        from orchestration.routing import QueueKind, queue_name, tenant_queues

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        client = self.client = await Client.connect(self.address)
        prefix = settings.TEMPORAL_QUEUE_PREFIX
        shards = settings.TEMPORAL_QUEUE_SHARDS
        plan = [(q, hosted(QueueKind.TENANT)) for q in tenant_queues(prefix=prefix, shards=shards)]
        plan.append((queue_name(prefix=prefix, kind=QueueKind.JOBS), hosted(QueueKind.JOBS)))
        with ThreadPoolExecutor(self.slots * len(plan)) as pool:
            workers = [
                Worker(
                    client,
                    task_queue=q,
                    workflows=list(h.workflows),
                    activities=list(h.activities),
                    activity_executor=pool,
                    max_concurrent_activities=self.slots,
                    max_concurrent_workflow_tasks=self.workflow_slots,
                    max_concurrent_local_activities=self.workflow_slots,
                )
                for q, h in plan
            ]
            runs = [asyncio.create_task(w.run()) for w in workers]
            self.ready.set()
            await self._stop.wait()
            await asyncio.gather(*(w.shutdown() for w in workers))
            await asyncio.gather(*runs, return_exceptions=True)

    def __enter__(self):
        self.thread.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


def wait_finished(results, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for result in results:
        while True:
            result.refresh()
            if result.is_finished:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{result.id} did not finish")
            time.sleep(0.05)


def bench_enqueue(n: int, tenant) -> list:
    from django.db import transaction
    from django_tenants.utils import schema_context

    from bench.sample_tasks import started_at
    from tenants.workspace.models import Project

    create, enqueue, results = [], [], []
    with schema_context(tenant.schema_name):
        for i in range(n + 20):  # the first 20 of each warm up
            t0 = time.perf_counter()
            with transaction.atomic():
                Project.objects.create(name=f"p{i}-{uuid.uuid4().hex[:8]}")
            t1 = time.perf_counter()
            with transaction.atomic():
                results.append(started_at.enqueue())
            t2 = time.perf_counter()
            if i >= 20:
                create.append((t1 - t0) * 1000)
                enqueue.append((t2 - t1) * 1000)
    (cm, cp), (em, ep) = median_p95(create), median_p95(enqueue)
    print(f"\n1. enqueue cost in a request's transaction, tenant schema, {n} each, interleaved")
    print(f"{'operation':<44}{'median ms':>10}{'p95 ms':>10}")
    print(f"{'baseline: Project.objects.create()':<44}{cm:>10.2f}{cp:>10.2f}")
    print(f"{'task.enqueue() (outbox row + NOTIFY)':<44}{em:>10.2f}{ep:>10.2f}")
    print(f"{'ratio enqueue / create (goal <= 2)':<44}{em / cm:>10.2f}{ep / cp:>10.2f}")
    return results


MODES = {"default": "an activity", "local": "a local activity"}  # backend alias -> how it runs


def bench_latency(n: int, tenant, backend: str) -> None:
    from django_tenants.utils import schema_context

    from bench.sample_tasks import record_start
    from tenants.workspace.models import Project

    latencies = []
    with schema_context(tenant.schema_name):
        for i in range(n + 5):  # the first 5 warm up
            name = f"latency-{i}-{uuid.uuid4().hex[:8]}"
            record_start.using(backend=backend).enqueue(name)  # autocommit: committed
            committed = time.time()
            deadline = time.monotonic() + 60
            while (
                began := Project.objects.filter(name=name)
                .values_list("description", flat=True)
                .first()
            ) is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"task {name} did not start within 60 s")
                time.sleep(0.002)
            if i >= 5:
                latencies.append((float(began) - committed) * 1000)
    m, p = median_p95(latencies)
    print(
        f"\n2. commit -> task started, {n} tasks one after the other (tenant queue), "
        f"the task as {MODES[backend]}"
    )
    print(f"{'path':<44}{'median ms':>10}{'p95 ms':>10}")
    print(f"{'commit -> task began (goal median <= 50)':<44}{m:>10.1f}{p:>10.1f}")


def finished_at(tenant, names: list[str], timeout: float = 1800) -> dict[str, float]:
    """{name: wall clock when its task finished}, once every one has (read from the
    tenant's schema, never from Temporal)."""
    from django_tenants.utils import schema_context

    from tenants.workspace.models import Project

    deadline = time.monotonic() + timeout
    with schema_context(tenant.schema_name):
        while True:
            found = dict(Project.objects.filter(name__in=names).values_list("name", "description"))
            if len(found) == len(names):
                return {name: float(at) for name, at in found.items()}
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(names) - len(found)} tasks did not finish")
            time.sleep(0.01)


TRACED = {  # history events shown by --trace, and their short names
    "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED": "run started",
    "EVENT_TYPE_WORKFLOW_TASK_STARTED": "wft began",
    "EVENT_TYPE_ACTIVITY_TASK_STARTED": "activity began",
    "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED": "run ended",
}


def trace(label: str, committed: dict[str, float], ids: dict[str, str]) -> None:
    """For each task: ms after its commit when the relay recorded its start, and when its
    run's events happened (read from the history once every task has finished)."""
    from orchestration.models import OutboxEntry

    recorded = dict(
        OutboxEntry.objects.filter(workflow_id__in=ids.values()).values_list(
            "workflow_id", "started_at"
        )
    )
    for name, at in committed.items():
        show = [
            venv_binary("temporal"),
            "workflow",
            "show",
            "-w",
            ids[name],
            "--address",
            os.environ["TEMPORAL_ADDRESS"],
            "-o",
            "json",
        ]
        history = json.loads(subprocess.run(show, capture_output=True, text=True).stdout)  # noqa: S603
        at_relay = recorded[ids[name]]  # None: the run ended before its pass did
        parts = [
            f"relay recorded {(at_relay.timestamp() - at) * 1000:.0f}"
            if at_relay
            else "relay not yet recorded"
        ]
        for event in history["events"]:
            if event["eventType"] in TRACED:
                when = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
                parts.append(f"{TRACED[event['eventType']]} {(when.timestamp() - at) * 1000:.0f}")
        print(f"  {label} {name}: " + ", ".join(parts))


def bench_fairness(
    backlog: int, a, b, backend: str, *, rounds: int = 3, show_trace: bool = False
) -> None:
    from django.db import transaction
    from django_tenants.utils import schema_context

    from bench.sample_tasks import little_work as task
    from tenants.workspace.models import Project

    little_work = task.using(backend=backend)

    def small_batch(label: str) -> list[float]:
        committed, ids = {}, {}
        with schema_context(b.schema_name):
            for i in range(10):
                name = f"b-{backend}-{label}-{i}"
                with transaction.atomic():
                    ids[name] = little_work.enqueue(name, 5).id
                committed[name] = time.time()
        done = finished_at(b, list(committed))
        if show_trace:
            trace(label, committed, ids)
        return [(done[name] - at) * 1000 for name, at in committed.items()]

    # B's 10 tasks, ``rounds`` times one after another (each round once the last finished):
    # one round's median moves by 2x between runs on this machine.
    rounds_of = {"idle": [], "loaded": []}

    def measured(kind: str, r: int) -> list[float]:
        times = small_batch(f"{kind}{r}")
        rounds_of[kind].append(statistics.median(times))
        return times

    idle = [t for r in range(rounds) for t in measured("idle", r)]
    names = [f"a-{backend}-{i}" for i in range(backlog)]
    with schema_context(a.schema_name), transaction.atomic():
        for name in names:
            little_work.enqueue(name, 5)
    time.sleep(1.0)  # A's backlog is in the outbox and on the queue
    loaded = [t for r in range(rounds) for t in measured("loaded", r)]  # while A drains
    b_done = time.time()
    with schema_context(a.schema_name):
        left = backlog - Project.objects.filter(name__in=names).count()
    finished_at(a, names)
    (im, ip), (lm, lp) = median_p95(idle), median_p95(loaded)
    print(
        f"\n3. fairness: tenant A enqueues {backlog} tasks, then tenant B 10 (same queue), "
        f"each task {MODES[backend]}; B's 10, {rounds} rounds, idle and loaded"
    )
    print(f"{'B: commit -> finished':<44}{'median ms':>10}{'p95 ms':>10}")
    print(f"{'idle queue':<44}{im:>10.1f}{ip:>10.1f}")
    print(f"{'behind A backlog':<44}{lm:>10.1f}{lp:>10.1f}")
    print(f"{'ratio loaded / idle (goal <= 2)':<44}{lm / im:>10.2f}{lp / ip:>10.2f}")
    for kind, medians in rounds_of.items():
        print(f"B {kind}, each round's median ms: " + ", ".join(f"{m:.0f}" for m in medians))
    print(f"A's tasks still unfinished when B's last finished: {left} of {backlog}")
    print(f"A's backlog drained {time.time() - b_done:.1f} s after that")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enqueues", type=int, default=500)
    parser.add_argument("--starts", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=list(MODES),
        default=list(MODES),
        help="backend aliases: default (task as an activity), local (as a local activity)",
    )
    parser.add_argument("--parts", nargs="+", type=int, choices=(1, 2, 3), default=[1, 2, 3])
    parser.add_argument("--rounds", type=int, default=3, help="part 3: rounds of B's 10 tasks")
    parser.add_argument("--trace", action="store_true", help="part 3: each of B's tasks, traced")
    parser.add_argument("--workflow-slots", type=int, help="workers' workflow task slots")
    parser.add_argument("--lanes", type=int, default=None, help="the relay's passes at once")
    parser.add_argument(
        "--runs-per-tenant",
        type=int,
        default=None,
        help="the relay's open runs per tenant (default: OUTBOX_RUNS_PER_TENANT; 0: no cap)",
    )
    args = parser.parse_args()
    server = temporal = relay = thread = None
    try:
        if not os.environ.get("DATABASE_URL"):
            server = start_postgres(LOCAL_DIR / "pg-bench")
            os.environ["DATABASE_URL"] = ensure_database(server, "bench_tasks", fresh=True)
        if not os.environ.get("TEMPORAL_ADDRESS"):
            temporal = TemporalDevServer().start()
            os.environ["TEMPORAL_ADDRESS"] = temporal.address
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        os.environ["BENCH_LOCAL_TASKS"] = "1"  # the "local" alias (bench/settings.py)
        os.environ.setdefault("TEMPORAL_QUEUE_SHARDS", "1")  # A and B share one queue
        import django

        django.setup()
        from django.core.management import call_command

        from accounts.models import User
        from orchestration.relay import OutboxRelay
        from tenants.models import Tenant, TenantStatus
        from tenants.schemas.create import create_schema

        call_command("migrate", "--noinput", verbosity=0)
        owner = User.objects.create_user(f"{uuid.uuid4().hex}@example.com", "x")
        a, b = (
            Tenant.objects.create(
                name=n,
                subdomain=f"{n}{uuid.uuid4().hex[:8]}",
                owner=owner,
                status=TenantStatus.ACTIVE,
            )
            for n in ("a", "b")
        )
        for tenant in (a, b):
            create_schema(tenant.schema_name)
        address = os.environ["TEMPORAL_ADDRESS"]
        # No worker yet: the enqueues are measured without their tasks running beside them
        # in this process; they run off once the workers start, before the next part.
        enqueued = bench_enqueue(args.enqueues, a) if 1 in args.parts else []
        with Workers(
            address, max_concurrent_activities=4, workflow_slots=args.workflow_slots
        ) as workers:
            # As run_temporal_worker does: the relay starts runs with the workers' client.
            async def workers_client():
                return workers.client

            lanes = {} if args.lanes is None else {"lanes": args.lanes}
            relay = OutboxRelay(
                connect=workers_client,
                poll_interval=2.0,
                runs_per_tenant=args.runs_per_tenant,
                **lanes,
            )
            cap = relay.runs_per_tenant
            print(
                f"relay: at most {cap or 'any number of'} open runs per tenant, "
                f"{relay.lanes} lane(s)"
            )
            thread = threading.Thread(target=relay.run, daemon=True)
            thread.start()
            wait_finished(enqueued)
            for backend in args.modes if 2 in args.parts else []:
                bench_latency(args.starts, b, backend)
            for backend in args.modes if 3 in args.parts else []:
                bench_fairness(
                    args.backlog, a, b, backend, rounds=args.rounds, show_trace=args.trace
                )
    finally:
        if relay is not None:
            relay.stop()
            thread.join(10)
        if temporal is not None:
            temporal.stop()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
