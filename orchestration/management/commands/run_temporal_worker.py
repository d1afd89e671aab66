import asyncio
import contextlib
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError
from temporalio.client import Client
from temporalio.worker import Worker

from orchestration import client as temporal_client
from orchestration.management.commands._temporal import TemporalCommand, seconds
from orchestration.registry import Hosted, hosted
from orchestration.relay import OutboxRelay
from orchestration.relay.lanes import LANES as RELAY_LANES
from orchestration.relay.lanes import Backoff
from orchestration.routing import QueueKind, queue_name, tenant_queues
from orchestration.schedules import sync_schedules
from orchestration.versioning import (
    DeploymentError,
    deployment_claim_current,
    deployment_set_current,
    worker_deployment_config,
)
from orchestration.workflows._steps import versioning as workflow_versioning

logger = logging.getLogger("orchestration.worker")


def _shard_list(value: str) -> list[int]:
    try:
        shards = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise CommandError(f"--shards takes shard numbers like 0,2,5; got {value!r}.") from None
    if not shards:
        raise CommandError("--shards names no shard.")
    if shards[0] < 0:
        raise CommandError(f"--shards {value}: shard numbers are 0 or more.")
    return shards


class Command(TemporalCommand):
    help = (
        "Run Temporal workers for this deployment's task queues, and the outbox relay. "
        "By default it polls every queue of every kind (tenant shards and jobs). "
        "SIGTERM/SIGINT stop polling, let running activities finish (up to "
        "--graceful-timeout) and exit 0."
    )
    trace_service = "tenantflow-worker"

    # The Temporal runtime whose metrics this process serves (WORKER_METRICS_ADDRESS), if any.
    runtime = None

    def add_arguments(self, parser):
        parser.add_argument(
            "--kind",
            action="append",
            choices=[kind.value for kind in QueueKind],
            help="Queue kind to poll; repeat for several (default: all kinds).",
        )
        parser.add_argument(
            "--shards",
            help="Comma-separated tenant shard numbers to poll, e.g. 0,1 (default: all shards).",
        )
        parser.add_argument(
            "--queue-shards",
            type=int,
            default=None,
            help="Shard count used to name tenant queues (default TEMPORAL_QUEUE_SHARDS). "
            "Set it to the old count while draining queues after a reshard.",
        )
        parser.add_argument(
            "--max-concurrent-activities",
            type=int,
            default=20,
            help="Activities run at once by this process, shared evenly by the queues it polls "
            "(at least one each). It is also the size of the activity thread pool, so an "
            "accepted activity never waits for a thread, and bounds the database connections "
            "the activities hold.",
        )
        parser.add_argument(
            "--graceful-timeout",
            type=seconds,
            default=60.0,
            help="Seconds running activities get to finish after SIGTERM before cancellation.",
        )
        parser.add_argument(
            "--sync-schedules",
            action="store_true",
            help="Create or update the project's Temporal Schedules at start-up.",
        )
        parser.add_argument(
            "--make-current",
            action="store_true",
            help="With TEMPORAL_WORKER_VERSIONING on: make this build the deployment's current "
            "version at start, whatever version is current (one worker process, as in make "
            "dev). Without it, a build is made current only when none is yet.",
        )
        parser.add_argument(
            "--no-relay",
            action="store_true",
            help="Do not run the outbox relay in this process (run run_outbox_relay instead).",
        )

    def handle(self, *args, **options):
        # Workflow definitions read the mode from the environment when imported (see
        # orchestration/workflows/_steps/versioning.py); a settings file that says otherwise
        # would start versioned workers with undeclared workflows, or the reverse.
        if settings.TEMPORAL_WORKER_VERSIONING != workflow_versioning.VERSIONED:
            raise CommandError(
                f"TEMPORAL_WORKER_VERSIONING is {settings.TEMPORAL_WORKER_VERSIONING} in the "
                f"settings but {workflow_versioning.VERSIONED} in the environment; set it in "
                "the environment (the workflow definitions read it there)."
            )
        if options["make_current"] and not settings.TEMPORAL_WORKER_VERSIONING:
            raise CommandError("--make-current needs TEMPORAL_WORKER_VERSIONING on.")
        plan = self.plan(options)
        if not plan and options["no_relay"]:
            raise CommandError(
                "Nothing to run: no workflows or activities are registered for the chosen "
                "queues and --no-relay was given."
            )
        relay = None
        self.client, self.client_ready = None, threading.Event()
        if not options["no_relay"]:
            relay = OutboxRelay(
                poll_interval=settings.OUTBOX_POLL_INTERVAL,
                retention=timedelta(days=settings.OUTBOX_RETENTION_DAYS),
                connect=self._relay_client if plan else temporal_client.connect,
            )
        # Before any client exists: the worker's client must be made with this runtime.
        if settings.WORKER_METRICS_ADDRESS:
            from orchestration.sdk_metrics import serve as serve_metrics

            try:
                self.runtime = serve_metrics(settings.WORKER_METRICS_ADDRESS)
            except OSError as exc:  # the address is taken or not this machine's
                raise CommandError(
                    f"WORKER_METRICS_ADDRESS={settings.WORKER_METRICS_ADDRESS}: {exc}"
                ) from exc
        asyncio.run(self.serve(plan, options, relay))
        logger.info("worker stopped")

    def plan(self, options) -> list[tuple[str, Hosted]]:
        # A kind named twice is polled once.
        kinds = list(dict.fromkeys(QueueKind(k) for k in options["kind"] or QueueKind))
        shard_count = options["queue_shards"]
        if shard_count is None:
            shard_count = settings.TEMPORAL_QUEUE_SHARDS
        if shard_count < 1:
            raise CommandError("--queue-shards must be at least 1.")
        if options["max_concurrent_activities"] < 1:
            raise CommandError("--max-concurrent-activities must be at least 1.")
        # Each running activity holds a database connection, each lane of the relay one
        # more: a pool smaller than that would leave activities waiting for a connection,
        # then failing.
        relay_lanes = 0 if options.get("no_relay") else RELAY_LANES
        needed = options["max_concurrent_activities"] + relay_lanes
        pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
        if isinstance(pool, dict) and pool.get("max_size", needed) < needed:
            raise CommandError(
                f"--max-concurrent-activities {options['max_concurrent_activities']} needs "
                f"DATABASE_POOL_MAX_SIZE >= {needed} (it is {pool['max_size']}): each running "
                f"activity holds a database connection, the relay {relay_lanes} more."
            )
        if options["shards"] is not None and QueueKind.TENANT not in kinds:
            raise CommandError("--shards applies to --kind tenant only.")
        prefix = settings.TEMPORAL_QUEUE_PREFIX
        plan = []
        for kind in kinds:
            registered = hosted(kind)
            if not registered:
                logger.warning("no workflows or activities registered for %s queues", kind)
                continue
            if kind != QueueKind.TENANT:
                plan.append((queue_name(prefix=prefix, kind=kind), registered))
                continue
            every = tenant_queues(prefix=prefix, shards=shard_count, kind=kind)
            if options["shards"] is None:
                chosen = every
            else:
                wanted = _shard_list(options["shards"])
                if wanted[-1] >= shard_count:
                    raise CommandError(
                        f"--shards {options['shards']}: shards run from 0 to {shard_count - 1}."
                    )
                chosen = [every[n] for n in wanted]
            plan.extend((queue, registered) for queue in chosen)
        return plan

    async def serve(self, plan, options, relay: OutboxRelay | None) -> None:
        """Poll the planned queues and run ``relay`` (when given) in a thread, until
        SIGTERM/SIGINT. A relay thread that ends on its own stops the worker with a
        ``CommandError``: a worker must not go on without the relay it was asked to run."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if relay is None:
            await self._serve_queues(plan, options, stop)
            return
        relay_thread = threading.Thread(target=relay.run, name="outbox-relay", daemon=True)
        relay_thread.start()
        logger.info("outbox relay running")
        relay_died = False

        async def watch_relay() -> None:
            nonlocal relay_died
            while not stop.is_set():
                if not relay_thread.is_alive():
                    relay_died = True
                    logger.error("the outbox relay stopped unexpectedly; stopping the worker")
                    stop.set()
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        watcher = asyncio.create_task(watch_relay())
        try:
            await self._serve_queues(plan, options, stop)
        finally:
            stop.set()
            await watcher
            relay.stop()
            await asyncio.to_thread(relay_thread.join, 30)
        if relay_died:
            raise CommandError("the outbox relay stopped unexpectedly (see the log above)")

    async def _serve_queues(self, plan, options, stop: asyncio.Event) -> None:
        """Poll the planned queues until ``stop`` is set."""
        if not plan:
            logger.info("polling no task queues; running the outbox relay only")
            await stop.wait()
            return
        client = await self._connect(stop)
        if client is None:
            return
        self.client = client
        self.client_ready.set()
        if options["sync_schedules"]:
            for schedule_id, what in (await sync_schedules(client)).items():
                logger.info("schedule %s %s", schedule_id, what)
        deployment = worker_deployment_config()
        if deployment is not None:
            version = deployment.version
            logger.info("worker deployment %s, build %s", version.deployment_name, version.build_id)
            try:
                if options["make_current"]:
                    await deployment_set_current(
                        client, build_id=version.build_id, allow_no_pollers=True
                    )
                    logger.info("made build %s current", version.build_id)
                else:
                    await deployment_claim_current(client, build_id=version.build_id)
            except DeploymentError as exc:
                raise CommandError(f"TEMPORAL_WORKER_VERSIONING is on, but {exc}") from exc
        # One thread per slot, so accepted work never waits for a thread; the total is the
        # option, so a process holds at most that many database connections for activities.
        per_queue = max(1, options["max_concurrent_activities"] // len(plan))
        threads = per_queue * len(plan)
        with ThreadPoolExecutor(threads, thread_name_prefix="activity") as executor:
            workers = [
                Worker(
                    client,
                    task_queue=queue,
                    workflows=list(registered.workflows),
                    activities=list(registered.activities),
                    activity_executor=executor,
                    max_concurrent_activities=per_queue,
                    graceful_shutdown_timeout=timedelta(seconds=options["graceful_timeout"]),
                    deployment_config=deployment,
                )
                for queue, registered in plan
            ]
            logger.info(
                "polling task queues: %s (namespace %s; %d activities at once per queue)",
                ", ".join(queue for queue, _ in plan),
                settings.TEMPORAL_NAMESPACE,
                per_queue,
            )
            runs = [asyncio.create_task(worker.run()) for worker in workers]
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopper, *runs], return_when=asyncio.FIRST_COMPLETED)
            logger.info("stopping: letting running activities finish")
            await asyncio.gather(*(worker.shutdown() for worker in workers))
            results = await asyncio.gather(*runs, return_exceptions=True)
            stopper.cancel()
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures and stopper not in done:
            raise CommandError(f"a worker stopped with an error: {failures[0]!r}")

    async def _relay_client(self) -> Client:
        """The relay's client: the workers', so that a start can hand its first workflow
        task straight to this process's worker (eager start). Raises while the workers
        have not connected yet; the relay then backs off and asks again."""
        if not await asyncio.to_thread(self.client_ready.wait, 5.0):
            raise ConnectionError("the worker has not connected to Temporal yet")
        return self.client

    async def _connect(self, stop: asyncio.Event) -> Client | None:
        """Connect, retrying with back-off while Temporal is not up yet; None if stopped."""
        backoff = Backoff(maximum=10.0)
        while not stop.is_set():
            try:
                return await temporal_client.connect(runtime=self.runtime)
            except Exception as exc:  # any connect failure is retried
                delay = backoff.next()
                logger.warning(
                    "cannot reach Temporal at %s (%s); retrying in %.1fs",
                    settings.TEMPORAL_ADDRESS,
                    exc,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        return None
