"""Keeps the warm schema pool (``tenants.pool``) full, on the jobs queue.

Started after each claim (through the outbox, from ``schema_pool_drawn``) and by a Temporal
Schedule (``sync_temporal_schedules``, when ``TENANT_SCHEMA_POOL_SIZE`` > 0), which also
prunes first: schemas made stale by a migration, surplus ones after the size was lowered,
debris. One pool schema per activity, so a refill interrupted by a worker restart resumes
where it stopped; the fills count the pool again each time under an advisory lock, so
refills that overlap never build past the size.
"""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import pool as steps
    from orchestration.workflows._steps.common import MEDIUM, within
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned

# A fill or prune retries through an outage for up to an hour; the next run carries on.
STEP = within(MEDIUM, 3600)


@dataclass
class SchemaPoolRefillInput(WorkflowInput):
    prune: bool = False
    # More than any pool size worth having; the next run carries on past it.
    max_builds: int = 100
    # Seconds to wait before building: a refill kicked by a claim lets the provisioning
    # that claimed finish first, instead of competing with it for the database.
    delay_seconds: int = 0

    def validate(self) -> None:
        if not isinstance(self.prune, bool):
            raise invalid("prune", f"must be true or false, got {self.prune!r}")
        require_positive("max_builds", self.max_builds)
        if not isinstance(self.delay_seconds, int) or self.delay_seconds < 0:
            raise invalid(
                "delay_seconds", f"must be a non-negative integer, got {self.delay_seconds!r}"
            )


# Pinned: a refill is a short batch; the next refill starts on the current build.
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.PINNED, workflow="SchemaPoolRefillWorkflow"
    ),
)
class SchemaPoolRefillWorkflow:
    @workflow.run
    async def run(self, params: SchemaPoolRefillInput | dict) -> int:
        """Returns how many pool schemas it built."""
        params = SchemaPoolRefillInput.parse(params)
        if params.delay_seconds:
            await workflow.sleep(timedelta(seconds=params.delay_seconds))
        if params.prune:
            await workflow.execute_activity(steps.schema_pool_prune, **STEP)
        built = 0
        while built < params.max_builds:
            if await workflow.execute_activity(steps.schema_pool_fill_one, **STEP) is None:
                break
            built += 1
        return built
