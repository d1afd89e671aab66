"""Tenant data exports' retention: delete exports (files and rows) that finished more than
``TENANT_EXPORT_RETENTION`` seconds ago, in batches. Runs on a Temporal Schedule
(``manage.py sync_temporal_schedules``)."""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import exports as steps
    from orchestration.workflows._steps.common import MEDIUM, within
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive
    from orchestration.workflows._steps.versioning import when_versioned

# Enough batches for a great many exports; past it the next scheduled run carries on.
MAX_BATCHES = 1000
# A batch retries through an outage for up to an hour; the next scheduled run carries on.
BATCH = within(MEDIUM, 3600)


@dataclass
class TenantExportsPruneInput(WorkflowInput):
    retention_seconds: int = 7 * 24 * 3600
    # Each export is a file to delete as well as a row: smaller batches than for rows alone.
    batch_size: int = 100

    def validate(self) -> None:
        require_positive("retention_seconds", self.retention_seconds)
        require_positive("batch_size", self.batch_size)


# Pinned: each scheduled prune is short; the next one starts on the current build.
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.PINNED, workflow="TenantExportsPruneWorkflow"
    ),
)
class TenantExportsPruneWorkflow:
    @workflow.run
    async def run(self, params: TenantExportsPruneInput | dict) -> int:
        params = TenantExportsPruneInput.parse(params)
        total = 0
        for _ in range(MAX_BATCHES):
            deleted = await workflow.execute_activity(
                steps.exports_delete_stale,
                args=[params.retention_seconds, params.batch_size],
                **BATCH,
            )
            total += deleted
            if deleted < params.batch_size:
                break
        return total
