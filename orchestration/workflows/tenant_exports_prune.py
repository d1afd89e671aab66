"""Tenant data exports' retention: delete exports (files and rows) that finished more than
``TENANT_EXPORT_RETENTION`` seconds ago, in batches. Runs on a Temporal Schedule
(``manage.py sync_temporal_schedules``)."""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import exports as steps
    from orchestration.workflows._steps.batches import delete_in_batches
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive
    from orchestration.workflows._steps.versioning import when_versioned


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
        return await delete_in_batches(
            steps.exports_delete_stale, params.retention_seconds, batch_size=params.batch_size
        )
