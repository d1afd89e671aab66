"""Tenant provisioning, as a saga (``PROVISIONING``, walked by ``_steps.saga``).

mark provisioning -> create the schema -> migrate it -> create the primary domain -> seed
the tenant's default data -> give the owner a membership -> mark active.

Every step but the schema's creation is a short database step, and the schema's creation
first tries the warm pool, then the template, as one too (``tenant_claim_pooled_schema``):
the saga's runner takes them all as one local activity, so a provisioning from the pool or
the template is one local activity in one workflow task. Without a usable template the first
try finds nothing, the schema is created on the task queue by migrations (heartbeating), and
the steps after it are a second local activity.

Each undo is registered *before* its step, so a step that half-happened is undone too; on
failure the undos run in reverse (remove the membership, delete the domain, drop the
schema), shielded from cancellation, then the final act marks the tenant failed with the
reason, and the run fails with an ``ApplicationError``. A cancelled run (a deletion asked
for meanwhile cancels it) lets its running step finish, undoes, and ends cancelled. A
tenant a deletion got to before the run began is left to it: the first step finds it
deleting and the run ends, completed and superseded, having done nothing.
"""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tenants as steps
    from orchestration.workflows._steps.common import (
        DEFAULT_RETRY_WINDOW,
        LONG,
        MEDIUM,
        SHORT,
        UNDO_LONG,
        UNDO_SHORT,
    )
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive, require_uuid
    from orchestration.workflows._steps.saga import Progress, Saga, SagaRun, Step
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class TenantProvisioningInput(WorkflowInput):
    tenant_id: str = ""  # required: the default fails validation
    attempt: int = 1
    # How long each step (or email) keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_uuid("tenant_id", self.tenant_id)
        require_positive("attempt", self.attempt)
        require_positive("retry_window_seconds", self.retry_window_seconds)


PROVISIONING = Saga(
    steps=[
        Step(steps.tenant_mark_provisioning, SHORT, local=True, may_end_run=True),
        Step(
            steps.tenant_create_schema,
            LONG,
            undo=(steps.tenant_drop_schema, UNDO_LONG),
            first_try=(steps.tenant_claim_pooled_schema, MEDIUM),
        ),
        # One SELECT when the schema is current, as it is after every creation path.
        Step(steps.tenant_migrate_schema, LONG, local=True),
        Step(
            steps.tenant_create_domain,
            SHORT,
            undo=(steps.tenant_delete_domains, UNDO_SHORT),
            local=True,
        ),
        Step(steps.tenant_seed_defaults, MEDIUM, local=True),
        Step(
            steps.tenant_add_owner_membership,
            SHORT,
            undo=(steps.tenant_remove_owner_membership, UNDO_SHORT),
            local=True,
        ),
        Step(steps.tenant_mark_active, SHORT, local=True),
    ],
    on_failure=(steps.tenant_mark_failed, UNDO_SHORT),
    failure_type="ProvisioningFailed",
    failure_message="Provisioning of tenant {subject} failed at {reason}",
    group_runner=steps.steps_runner,
)


# Pinned: a run of seconds finishes on the build it started on; a change to it needs no
# patch (docs/versioning.md).
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.PINNED, workflow="TenantProvisioningWorkflow"
    ),
)
class TenantProvisioningWorkflow:
    def __init__(self) -> None:
        self._run = SagaRun(PROVISIONING)

    @workflow.query
    def progress(self) -> Progress:
        return self._run.progress

    @workflow.run
    async def run(self, params: TenantProvisioningInput | dict) -> Progress:
        params = TenantProvisioningInput.parse(params)
        return await self._run.run(params.tenant_id, retry_window=params.retry_window_seconds)
