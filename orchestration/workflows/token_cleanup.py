"""Token cleanup: delete used, revoked and expired tokens past the retention, in batches.
Runs on a Temporal Schedule (``manage.py sync_temporal_schedules``)."""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import accounts as steps
    from orchestration.workflows._steps.batches import delete_in_batches
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned


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
        return await delete_in_batches(
            steps.tokens_delete_stale, params.retention_seconds, batch_size=params.batch_size
        )
