"""A deliberately incompatible edit of the provisioning workflow, for the replay test: the
same saga with the schema created on the task queue before the tenant is marked
provisioning. Replaying recorded histories against it must fail with a non-determinism
error."""

import dataclasses

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestration.workflows._steps.saga import Saga, SagaRun
    from orchestration.workflows.tenant_provisioning import PROVISIONING, TenantProvisioningInput

mark, create, *rest = PROVISIONING.steps
REORDERED = Saga(
    steps=[dataclasses.replace(create, first_try=None), mark, *rest],
    on_failure=PROVISIONING.on_failure,
    failure_type=PROVISIONING.failure_type,
    failure_message=PROVISIONING.failure_message,
    group_runner=PROVISIONING.group_runner,
)


@workflow.defn(name="TenantProvisioningWorkflow")
class ReorderedProvisioningWorkflow:
    @workflow.run
    async def run(self, params: TenantProvisioningInput):
        return await SagaRun(REORDERED).run(params.tenant_id)
