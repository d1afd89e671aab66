"""Tenant deletion: stop provisioning -> mark deleting -> revoke access -> drop the schema
-> delete the domains -> delete the data exports -> mark deleted. The row stays as a
tombstone with ``deleted_at``.

A deletion asked for while the tenant is being provisioned first cancels the provisioning
run, which lets its running step finish and undoes what it built, then waits until the
tenant is settled (failed, or active when the cancel came during the last step) before
deleting.

The same shape as provisioning (a ``Saga`` walked by ``_steps.saga``), with no undos: a
deletion only ever moves forward. Every step is idempotent, so a run that crashed can simply
run again (the deletion is started with ``ALLOW_DUPLICATE_FAILED_ONLY``).
"""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tenants as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, LONG, SHORT
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive, require_uuid
    from orchestration.workflows._steps.saga import Saga, SagaRun, Step
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class TenantDeletionInput(WorkflowInput):
    tenant_id: str = ""  # required: the default fails validation
    # The provisioning run to stop first, when the deletion was asked for during it.
    provisioning_workflow_id: str = ""
    # How long each step (or email) keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_uuid("tenant_id", self.tenant_id)
        require_positive("retry_window_seconds", self.retry_window_seconds)


@dataclass
class DeletionResult:
    memberships_deactivated: int
    schema_dropped: bool
    domains_deleted: int


DELETION = Saga(
    steps=[
        Step(steps.tenant_wait_provisioning_settled, LONG),
        Step(steps.tenant_mark_deleting, SHORT),
        Step(steps.tenant_revoke_access, SHORT),
        Step(steps.tenant_drop_schema, LONG),
        Step(steps.tenant_delete_domains, SHORT),
        Step(steps.tenant_delete_exports, SHORT),
        Step(steps.tenant_mark_deleted, SHORT),
    ],
)


# Pinned: a run of seconds finishes on the build it started on; a change to it needs no
# patch (docs/versioning.md).
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.PINNED, workflow="TenantDeletionWorkflow"
    ),
)
class TenantDeletionWorkflow:
    def __init__(self) -> None:
        self._run = SagaRun(DELETION)

    @workflow.query
    def current_step(self) -> str | None:
        return self._run.progress.current_step

    @workflow.run
    async def run(self, params: TenantDeletionInput | dict) -> DeletionResult:
        params = TenantDeletionInput.parse(params)
        if params.provisioning_workflow_id:
            await _cancel(params.provisioning_workflow_id)
        await self._run.run(params.tenant_id, retry_window=params.retry_window_seconds)
        done = self._run.results
        return DeletionResult(
            memberships_deactivated=done["revoke_access"],
            schema_dropped=done["drop_schema"],
            domains_deleted=done["delete_domains"],
        )


async def _cancel(workflow_id: str) -> None:
    """Asks the provisioning run ``workflow_id`` to stop (the saga's first step then waits
    for the tenant to settle)."""
    try:
        await workflow.get_external_workflow_handle(workflow_id).cancel()
    except FailureError as exc:  # already closed, or never started: nothing to stop
        workflow.logger.info("provisioning run not cancelled: %s", exc)
