"""A deliberately incompatible edit of the provisioning workflow, for the replay test: the
domain is created before the schema is migrated. Replaying recorded histories against it
must fail with a non-determinism error."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tenants as steps
    from orchestration.workflows._steps.common import LONG, SHORT
    from orchestration.workflows.tenant_provisioning import TenantProvisioningInput


@workflow.defn(name="TenantProvisioningWorkflow")
class ReorderedProvisioningWorkflow:
    @workflow.run
    async def run(self, params: TenantProvisioningInput) -> None:
        tenant_id = params.tenant_id
        await workflow.execute_activity(steps.tenant_mark_provisioning, tenant_id, **SHORT)
        await workflow.execute_activity(steps.tenant_create_schema, tenant_id, **LONG)
        await workflow.execute_activity(steps.tenant_create_domain, tenant_id, **SHORT)
        await workflow.execute_activity(steps.tenant_migrate_schema, tenant_id, **LONG)
        await workflow.execute_activity(steps.tenant_add_owner_membership, tenant_id, **SHORT)
        await workflow.execute_activity(steps.tenant_mark_active, tenant_id, **SHORT)
