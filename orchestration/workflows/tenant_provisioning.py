"""Tenant provisioning, as a saga (``PROVISIONING``, walked by ``_steps.saga``).

mark provisioning -> create the schema -> migrate it -> create the primary domain -> seed
the tenant's default data -> give the owner a membership -> mark active. (The seeding step
came with the ``seed-default-data`` patch; runs started before it replay without it.)

Each undo is registered *before* its step, so a step that half-happened is undone too; on
failure the undos run in reverse (remove the membership, delete the domain, drop the
schema), shielded from cancellation, then the final act marks the tenant failed with the
reason, and the run fails with an ``ApplicationError``.

New runs (the ``local-db-steps`` patch) take every forward step but the schema's creation as
a local activity, in the workflow's own worker: the same activities, undos registered the
same way, one task-queue round trip instead of seven. Runs since the ``pool-claim-local``
patch first try to claim a warm pool schema as a local activity (the schema's undo is
registered before): a run that gets one makes no task-queue round trip at all. Runs since
the ``grouped-db-steps`` patch take consecutive local steps and the pool claim as one local
activity (``tenant_run_steps``): a pooled run is one local activity. The first try replays
the template when the pool has none (an activity's change, no patch: its recorded results
replay as they are), so a run from the template is one local activity too; only without a
usable template does the group stop at the first try, the schema is created on the task
queue (migrations), and the steps after it are a second group. The undos of a group's
steps are registered before it, its database steps share one transaction, and a failure
names the step that failed.

Cancelling a run (the ``wait-for-steps`` patch): the step that is running is let finish
(``WAIT_CANCELLATION_COMPLETED``), then the run stops and undoes, so an undo never runs
beside the step it undoes. Runs started before the patch keep ``TRY_CANCEL``.
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


# Versioning: new runs seed the tenant's default data; runs started before this change
# (their histories have no such activity) replay the old path. See docs/versioning.md.
SEED_DEFAULTS_PATCH = "seed-default-data"
WAIT_FOR_STEPS_PATCH = "wait-for-steps"

# New runs take the short database steps as local activities: one task-queue round trip
# (the schema's creation, which heartbeats) instead of seven. Undos stay activities.
LOCAL_STEPS_PATCH = "local-db-steps"

# New runs try the warm schema pool first, as a local activity: with a pool schema to claim,
# the whole run is one workflow task, no task-queue round trip at all.
POOL_FIRST_PATCH = "pool-claim-local"

# New runs take consecutive local steps (and the pool claim) as one local activity,
# ``tenant_run_steps``: a pooled provisioning is one local activity in one workflow task.
GROUPED_STEPS_PATCH = "grouped-db-steps"

PROVISIONING = Saga(
    steps=[
        Step(steps.tenant_mark_provisioning, SHORT, local=True),
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
        Step(steps.tenant_seed_defaults, MEDIUM, patch=SEED_DEFAULTS_PATCH, local=True),
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
    run_steps=steps.tenant_run_steps,
)


# Pinned (with Worker Versioning on): a run of minutes finishes on the build it started
# on, so its old workers are needed only minutes. Changes still go behind workflow.patched
# while unversioned workers (the default) may replay it (docs/versioning.md).
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
        self._run.retry_window = params.retry_window_seconds
        self._run.wait_for_steps = workflow.patched(WAIT_FOR_STEPS_PATCH)
        self._run.local_steps = workflow.patched(LOCAL_STEPS_PATCH)
        self._run.first_tries = workflow.patched(POOL_FIRST_PATCH)
        self._run.grouped_steps = workflow.patched(GROUPED_STEPS_PATCH)
        return await self._run.run(params.tenant_id)
