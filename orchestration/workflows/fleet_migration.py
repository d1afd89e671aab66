"""Fleet migration: every tenant schema brought to the code's migrations.

The template first (``fleet_start``), then the active tenants in schema-name order, a batch
at a time: ``fleet_next_batch`` tells which schemas of the batch are behind (a constant number
of queries), those are migrated by ``fleet_migrate_tenants`` in chunks of up to ``CHUNK``
schemas of one shard queue, at background priority with the run as fairness key, at most
``concurrency`` chunks at once, and ``fleet_record_batch`` adds the outcomes to the
``FleetRun`` row. A schema whose migration fails is recorded (tenant, migration, error) and
the run goes on. After ``continue_after`` tenants the run continues as new from its cursor,
so a fleet of any size keeps a small history.

Signals: ``pause`` (the migrations under way finish, no more start), ``resume``, ``cancel``
(the same, then the run ends ``cancelled``). A killed worker or a restarted Temporal resumes
where the run was: the cursor is in the run's input and in the database.
"""

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import fleet as steps
    from orchestration.workflows._steps.common import LONG, MEDIUM, SHORT, within
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class FleetMigrationInput(WorkflowInput):
    run_id: str = ""  # required: the default fails validation
    concurrency: int = 8
    batch_size: int = 200
    continue_after: int = 2000
    # Carried through continue-as-new:
    after: str = ""  # the last schema recorded
    started: bool = False  # fleet_start done
    paused: bool = False

    def validate(self) -> None:
        if not isinstance(self.run_id, str) or not self.run_id.startswith("fleet-"):
            raise invalid("run_id", f"must be a fleet run id, got {self.run_id!r}")
        for name in ("concurrency", "batch_size", "continue_after"):
            require_positive(name, getattr(self, name))


# Schemas migrated by one activity: one task-queue round trip and one workflow task per
# chunk rather than per schema, which cost more than an AddField itself. The patch that
# brought chunks is deprecated: runs from before it are gone, runs that took it replay.
# Its removal, and when it is safe, are in docs/versioning.md.
CHUNKS_PATCH = "fleet-chunks"
CHUNK = 8

# A migration retries through outages for as long as a step does; its own failure is not
# raised but reported (the activity returns it), so one broken schema never stops the run.
MIGRATE = within(LONG, 24 * 3600)
# Starting may sync the template (a pg_dump): a schema's worth of DDL.
START = within({**LONG, "start_to_close_timeout": timedelta(minutes=30)}, 24 * 3600)


# Auto-upgrade: a fleet run lasts as long as the fleet takes and continues as new; each
# batch should run on the current build, not keep an old one's workers around. A change
# to it goes behind workflow.patched (docs/versioning.md).
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.AUTO_UPGRADE, workflow="FleetMigrationWorkflow"
    ),
)
class FleetMigrationWorkflow:
    def __init__(self) -> None:
        self._paused = False
        self._cancelled = False
        self._counts = {"migrated": 0, "current": 0, "skipped": 0, "failed": 0}

    @workflow.signal
    def pause(self) -> None:
        self._paused = True

    @workflow.signal
    def resume(self) -> None:
        self._paused = False

    @workflow.signal
    def cancel(self) -> None:
        self._cancelled = True

    @workflow.query
    def progress(self) -> dict:
        """This run's counts (since its last continue-as-new), and whether it is paused."""
        return {**self._counts, "paused": self._paused, "cancelled": self._cancelled}

    @workflow.run
    async def run(self, params: FleetMigrationInput | dict) -> dict:
        params = FleetMigrationInput.parse(params)
        self._paused = self._paused or params.paused
        try:
            return await self._run(params)
        except asyncio.CancelledError:  # cancelled through Temporal rather than by signal
            self._cancelled = True
            await workflow.execute_activity(steps.fleet_finish, args=[params.run_id, True], **SHORT)
            raise

    async def _run(self, params: FleetMigrationInput) -> dict:
        if not params.started:
            await workflow.execute_activity(steps.fleet_start, params.run_id, **START)
        after, reached = params.after, 0
        while not self._cancelled:
            batch = await workflow.execute_activity(
                steps.fleet_next_batch, args=[params.run_id, after, params.batch_size], **SHORT
            )
            if not batch["last"]:
                break
            results = {tenant: {"outcome": "current"} for tenant in batch["current"]}
            results.update(await self._migrate(params, batch["behind"]))
            await workflow.execute_activity(
                steps.fleet_record_batch,
                args=[params.run_id, after, batch["last"], results],
                **MEDIUM,
            )
            for result in results.values():
                self._counts[result["outcome"]] += 1
            after = batch["last"]
            reached += len(batch["current"]) + len(batch["behind"])
            if reached >= params.continue_after and not self._cancelled:
                workflow.continue_as_new(
                    replace(params, after=after, started=True, paused=self._paused)
                )
        return await workflow.execute_activity(
            steps.fleet_finish, args=[params.run_id, self._cancelled], **SHORT
        )

    async def _migrate(self, params: FleetMigrationInput, routes: list) -> dict:
        """The schemas behind, grouped by shard queue into chunks of at most ``CHUNK``, each
        chunk one activity that migrates its schemas one after another, ``concurrency``
        chunks at a time. A pause or cancel lets the chunks under way finish; chunks not
        begun when the run is cancelled are left out of the results (not counted)."""
        workflow.deprecate_patch(CHUNKS_PATCH)
        groups: dict[tuple[str, int], list[str]] = {}
        for tenant_id, task_queue, priority_key in routes:
            groups.setdefault((task_queue, priority_key), []).append(tenant_id)
        # Small enough that every slot has work in a small batch, at most CHUNK.
        size = max(1, min(CHUNK, -(-len(routes) // params.concurrency)))
        slots = asyncio.Semaphore(params.concurrency)
        # One fairness key for the run: at background priority, the fleet shares the
        # workers with other tenants' background work as one party, however many chunks.
        fairness = f"fleet:{params.run_id}"[:64]
        chunks = [
            self._when_running(
                slots,
                steps.fleet_migrate_tenants,
                ids[i : i + size],
                task_queue=task_queue,
                priority=Priority(priority_key=priority_key, fairness_key=fairness),
            )
            for (task_queue, priority_key), ids in groups.items()
            for i in range(0, len(ids), size)
        ]
        results: dict = {}
        for done in await asyncio.gather(*chunks):
            results.update(done or {})
        return results

    async def _when_running(self, slots: asyncio.Semaphore, activity, arg, **options):
        """``activity(arg)`` in one of ``slots``, once the run is not paused; None when the
        run was cancelled before it began."""
        async with slots:
            await workflow.wait_condition(lambda: not self._paused or self._cancelled)
            if self._cancelled:
                return None
            return await workflow.execute_activity(activity, arg, **options, **MIGRATE)
