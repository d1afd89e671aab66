"""Task results' retention: delete the ``django.tasks`` results (``TaskRecord``) of each
``TemporalTaskBackend`` past its ``RESULT_RETENTION_DAYS``, in batches. Runs on a Temporal
Schedule (``manage.py sync_temporal_schedules``)."""

from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tasks as steps
    from orchestration.workflows._steps.batches import delete_in_batches
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class TaskResultsPruneInput(WorkflowInput):
    # Backend alias -> seconds its results are kept after they finish.
    retention_seconds: dict = field(default_factory=dict)
    batch_size: int = 1000

    def validate(self) -> None:
        if not isinstance(self.retention_seconds, dict):
            raise invalid("retention_seconds", "must be an object")
        for alias, seconds in self.retention_seconds.items():
            require_positive(f"retention_seconds[{alias!r}]", seconds)
        require_positive("batch_size", self.batch_size)


# Pinned: each scheduled prune is short; the next one starts on the current build.
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.PINNED, workflow="TaskResultsPruneWorkflow"
    ),
)
class TaskResultsPruneWorkflow:
    @workflow.run
    async def run(self, params: TaskResultsPruneInput | dict) -> int:
        params = TaskResultsPruneInput.parse(params)
        total = 0
        for backend, seconds in sorted(params.retention_seconds.items()):
            total += await delete_in_batches(
                steps.task_results_delete_stale, backend, seconds, batch_size=params.batch_size
            )
        return total
