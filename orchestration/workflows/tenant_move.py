"""A tenant's move to another database, as a saga (``MOVE``), then the old schema's drop.

hold (suspend with reason ``moving``) -> copy the schema into the target database ->
verify it (row counts and checksums) -> switch the tenant to it (and end the hold); then a
durable timer of ``TENANT_MOVE_DROP_AFTER`` and the old schema's drop
(``tenants.services.moves`` says what each step does).

A failure or a cancel before the switch undoes, in reverse: the copy is dropped, the hold
ends: the tenant is where it was, serving, and the reason is its ``last_error``. A cancel
during the wait after the switch drops the old schema at once: the move is done.
"""

import asyncio
import functools
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import moves as steps
    from orchestration.activities.tenants import steps_runner
    from orchestration.workflows._steps.common import (
        DEFAULT_RETRY_WINDOW,
        LONG,
        SHORT,
        UNDO_LONG,
        UNDO_SHORT,
    )
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive, require_uuid
    from orchestration.workflows._steps.saga import Progress, Saga, SagaRun, Step, to_the_end
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class TenantMoveInput(WorkflowInput):
    tenant_id: str = ""  # required: the default fails validation
    number: int = 1  # the move's number (Tenant.moves): part of the workflow id
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_uuid("tenant_id", self.tenant_id)
        require_positive("number", self.number)
        require_positive("retry_window_seconds", self.retry_window_seconds)


MOVE = Saga(
    steps=[
        Step(
            steps.tenant_move_hold, SHORT, undo=(steps.tenant_move_release, UNDO_SHORT), local=True
        ),
        Step(steps.tenant_move_copy, LONG, undo=(steps.tenant_move_drop_copy, UNDO_LONG)),
        Step(steps.tenant_move_verify, LONG),
        Step(steps.tenant_move_switch, SHORT, local=True),
    ],
    on_failure=(steps.tenant_move_failed, UNDO_SHORT),
    failure_type="MoveFailed",
    failure_message="Move of tenant {subject} failed at {reason}",
    group_runner=functools.partial(steps_runner, name="tenant_move_run_steps"),
)

# Every activity a move run schedules, for the tenant workers.
ACTIVITIES = [*MOVE.activities, steps.tenant_move_drop_old]


# Auto-upgrade: after the switch a run waits TENANT_MOVE_DROP_AFTER (a day by default);
# pinned, it would keep its build's workers alive that long. Every change to it goes
# behind workflow.patched (docs/versioning.md).
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.AUTO_UPGRADE, workflow="TenantMoveWorkflow"
    ),
)
class TenantMoveWorkflow:
    def __init__(self) -> None:
        self._run = SagaRun(MOVE)

    @workflow.query
    def progress(self) -> Progress:
        return self._run.progress

    @workflow.run
    async def run(self, params: TenantMoveInput | dict) -> Progress:
        params = TenantMoveInput.parse(params)
        progress = await self._run.run(params.tenant_id, retry_window=params.retry_window_seconds)
        wait = self._run.results[MOVE.steps[-1].name]
        try:
            if wait > 0:
                await workflow.sleep(timedelta(seconds=wait))
        except asyncio.CancelledError:
            pass  # the move is done: a cancel only shortens the wait
        # Shielded: the old schema is dropped whatever happens to the run meanwhile; a
        # cleanup, retried until it succeeds, like an undo.
        await to_the_end(
            workflow.execute_activity(steps.tenant_move_drop_old, params.tenant_id, **UNDO_LONG)
        )
        return progress
