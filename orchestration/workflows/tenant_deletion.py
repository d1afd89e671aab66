"""Tenant deletion: mark deleting -> revoke access -> drop the schema -> delete the domains
-> mark deleted. The row stays as a tombstone with ``deleted_at``.

Every step is idempotent, so a run that crashed can simply run again (the deletion is
started with ``ALLOW_DUPLICATE_FAILED_ONLY``); there is nothing to compensate: a deletion
only ever moves forward.
"""

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tenants as steps
    from orchestration.workflows._steps.common import LONG, SHORT
    from orchestration.workflows._steps.inputs import WorkflowInput, require_uuid


@dataclass
class TenantDeletionInput(WorkflowInput):
    tenant_id: str = ""  # required: the default fails validation

    def validate(self) -> None:
        require_uuid("tenant_id", self.tenant_id)


@dataclass
class DeletionResult:
    memberships_deactivated: int
    tokens_revoked: int
    schema_dropped: bool
    domains_deleted: int


@workflow.defn
class TenantDeletionWorkflow:
    def __init__(self) -> None:
        self._current: str | None = None

    @workflow.query
    def current_step(self) -> str | None:
        return self._current

    @workflow.run
    async def run(self, params: TenantDeletionInput) -> DeletionResult:
        tenant_id = params.tenant_id
        self._current = "mark_deleting"
        await workflow.execute_activity(steps.tenant_mark_deleting, tenant_id, **SHORT)
        self._current = "revoke_access"
        memberships, tokens = await workflow.execute_activity(
            steps.tenant_revoke_access, tenant_id, **SHORT
        )
        self._current = "drop_schema"
        dropped = await workflow.execute_activity(steps.tenant_drop_schema, tenant_id, **LONG)
        self._current = "delete_domains"
        domains = await workflow.execute_activity(steps.tenant_delete_domains, tenant_id, **SHORT)
        self._current = "mark_deleted"
        await workflow.execute_activity(steps.tenant_mark_deleted, tenant_id, **SHORT)
        self._current = None
        return DeletionResult(memberships, tokens, dropped, domains)
