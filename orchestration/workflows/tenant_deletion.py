"""Tenant deletion: (stop provisioning) -> mark deleting -> revoke access -> drop the schema
-> delete the domains -> (delete the data exports) -> mark deleted. The row stays as a
tombstone with ``deleted_at``.

A deletion asked for while the tenant is being provisioned (the ``stop-provisioning-first``
patch) first cancels the provisioning run, which lets its running step finish and undoes
what it built, then waits until the tenant is settled (failed, or active when the cancel came
during the last step) before deleting. Runs started before the patch go straight on.

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


STOP_PROVISIONING_PATCH = "stop-provisioning-first"
# Runs started before tenants had data exports replay without the step.
DELETE_EXPORTS_PATCH = "delete-exports"

DELETION = Saga(
    steps=[
        Step(steps.tenant_wait_provisioning_settled, LONG, patch=STOP_PROVISIONING_PATCH),
        Step(steps.tenant_mark_deleting, SHORT),
        Step(steps.tenant_revoke_access, SHORT),
        Step(steps.tenant_drop_schema, LONG),
        Step(steps.tenant_delete_domains, SHORT),
        Step(steps.tenant_delete_exports, SHORT, patch=DELETE_EXPORTS_PATCH),
        Step(steps.tenant_mark_deleted, SHORT),
    ],
)


# Pinned (with Worker Versioning on): a run of minutes finishes on the build it started
# on, so its old workers are needed only minutes. Changes still go behind workflow.patched
# while unversioned workers (the default) may replay it (docs/versioning.md).
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
        self._run.retry_window = params.retry_window_seconds
        if params.provisioning_workflow_id and workflow.patched(STOP_PROVISIONING_PATCH):
            handle = workflow.get_external_workflow_handle(params.provisioning_workflow_id)
            try:
                await handle.cancel()
            except FailureError as exc:  # already closed, or never started: nothing to stop
                workflow.logger.info("provisioning run not cancelled: %s", exc)
        await self._run.run(params.tenant_id)
        done = self._run.results
        revoked = done["revoke_access"]  # [memberships, tokens] in runs recorded before
        return DeletionResult(
            memberships_deactivated=revoked[0] if isinstance(revoked, list) else revoked,
            schema_dropped=done["drop_schema"],
            domains_deleted=done["delete_domains"],
        )
