"""Tenant deletion: mark deleting -> revoke access -> drop the schema -> delete the domains
-> mark deleted. The row stays as a tombstone with ``deleted_at``.

The same shape as provisioning (a ``Saga`` walked by ``_steps.saga``), with no undos: a
deletion only ever moves forward. Every step is idempotent, so a run that crashed can simply
run again (the deletion is started with ``ALLOW_DUPLICATE_FAILED_ONLY``).
"""

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tenants as steps
    from orchestration.workflows._steps.common import LONG, SHORT
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive, require_uuid
    from orchestration.workflows._steps.saga import Saga, SagaRun, Step


@dataclass
class TenantDeletionInput(WorkflowInput):
    tenant_id: str = ""  # required: the default fails validation
    # How long each step (or email) keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = 24 * 3600

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
        Step(steps.tenant_mark_deleting, SHORT),
        Step(steps.tenant_revoke_access, SHORT),
        Step(steps.tenant_drop_schema, LONG),
        Step(steps.tenant_delete_domains, SHORT),
        Step(steps.tenant_mark_deleted, SHORT),
    ],
)


@workflow.defn
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
        await self._run.run(params.tenant_id)
        done = self._run.results
        revoked = done["revoke_access"]  # [memberships, tokens] in runs recorded before
        return DeletionResult(
            memberships_deactivated=revoked[0] if isinstance(revoked, list) else revoked,
            schema_dropped=done["drop_schema"],
            domains_deleted=done["delete_domains"],
        )
