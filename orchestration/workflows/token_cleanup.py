"""Token cleanup: delete used, revoked and expired tokens past the retention, in batches.
Runs on a Temporal Schedule (``manage.py sync_temporal_schedules``)."""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import accounts as steps
    from orchestration.workflows._steps.common import MEDIUM, within
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned

# Enough batches for millions of rows; past it the next scheduled run carries on.
MAX_BATCHES = 1000
# A batch retries through an outage for up to an hour; the next scheduled run carries on.
BATCH = within(MEDIUM, 3600)


@dataclass
class TokenCleanupInput(WorkflowInput):
    retention_seconds: int = 30 * 24 * 3600
    batch_size: int = 1000

    def validate(self) -> None:
        if not isinstance(self.retention_seconds, int) or self.retention_seconds < 0:
            raise invalid("retention_seconds", "must be a non-negative integer")
        require_positive("batch_size", self.batch_size)


# Pinned: each scheduled clean-up is short; the next one starts on the current build.
@workflow.defn(
    versioning_behavior=when_versioned(VersioningBehavior.PINNED, workflow="TokenCleanupWorkflow"),
)
class TokenCleanupWorkflow:
    @workflow.run
    async def run(self, params: TokenCleanupInput | dict) -> int:
        params = TokenCleanupInput.parse(params)
        total = 0
        for _ in range(MAX_BATCHES):
            deleted = await workflow.execute_activity(
                steps.tokens_delete_stale,
                args=[params.retention_seconds, params.batch_size],
                **BATCH,
            )
            total += deleted
            if deleted < params.batch_size:
                break
        return total
