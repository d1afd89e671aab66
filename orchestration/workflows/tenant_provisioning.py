"""Tenant provisioning, as a saga.

mark provisioning -> create the schema -> migrate it -> create the primary domain -> seed
the tenant's default data -> give the owner a membership -> mark active. (The seeding step
came with the ``seed-default-data`` patch; runs started before it replay without it.)

Each undo is registered *before* its step, so a step that half-happened is undone too; on
failure the undos run in reverse (drop the schema, delete the domain, remove the
membership, mark the tenant failed with the reason), shielded from cancellation, and the
run fails with an ``ApplicationError``.

Cancelling a run (the ``wait-for-steps`` patch): the step that is running is let finish
(``WAIT_CANCELLATION_COMPLETED``), then the run stops and undoes, so an undo never runs
beside the step it undoes. Runs started before the patch keep ``TRY_CANCEL``.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tenants as steps
    from orchestration.workflows._steps.common import LONG, MEDIUM, SHORT, UNDO_LONG, UNDO_SHORT
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive, require_uuid


@dataclass
class TenantProvisioningInput(WorkflowInput):
    tenant_id: str = ""  # required: the default fails validation
    attempt: int = 1

    def validate(self) -> None:
        require_uuid("tenant_id", self.tenant_id)
        require_positive("attempt", self.attempt)


@dataclass
class ProvisioningProgress:
    steps_done: list[str] = field(default_factory=list)
    current_step: str | None = None
    total: int = 0
    state: str = "running"  # running | compensating | completed | failed
    error: str = ""


STEPS = [
    "mark_provisioning", "create_schema", "migrate_schema", "create_domain", "seed_defaults",
    "add_owner_membership", "mark_active",
]  # fmt: skip
# Versioning: new runs seed the tenant's default data; runs started before this change
# (their histories have no such activity) replay the old path. See docs/versioning.md.
SEED_DEFAULTS_PATCH = "seed-default-data"
WAIT_FOR_STEPS_PATCH = "wait-for-steps"


@workflow.defn
class TenantProvisioningWorkflow:
    def __init__(self) -> None:
        self._progress = ProvisioningProgress(total=len(STEPS))
        self._wait_for_steps = False  # set by the wait-for-steps patch

    @workflow.query
    def progress(self) -> ProvisioningProgress:
        return self._progress

    @workflow.run
    async def run(self, params: TenantProvisioningInput) -> ProvisioningProgress:
        tenant_id = params.tenant_id
        self._wait_for_steps = workflow.patched(WAIT_FOR_STEPS_PATCH)
        undo: list[tuple[Callable, dict]] = [(steps.tenant_mark_failed, UNDO_SHORT)]
        try:
            await self._step("mark_provisioning", steps.tenant_mark_provisioning, tenant_id, SHORT)
            undo.append((steps.tenant_drop_schema, UNDO_LONG))
            await self._step("create_schema", steps.tenant_create_schema, tenant_id, LONG)
            await self._step("migrate_schema", steps.tenant_migrate_schema, tenant_id, LONG)
            undo.append((steps.tenant_delete_domains, UNDO_SHORT))
            await self._step("create_domain", steps.tenant_create_domain, tenant_id, SHORT)
            if workflow.patched(SEED_DEFAULTS_PATCH):
                await self._step("seed_defaults", steps.tenant_seed_defaults, tenant_id, MEDIUM)
            else:
                self._progress.total -= 1
            undo.append((steps.tenant_remove_owner_membership, UNDO_SHORT))
            await self._step(
                "add_owner_membership", steps.tenant_add_owner_membership, tenant_id, SHORT
            )
            await self._step("mark_active", steps.tenant_mark_active, tenant_id, SHORT)
        except (Exception, asyncio.CancelledError) as err:
            if isinstance(err, asyncio.CancelledError) and workflow.cancellation_reason() is None:
                raise  # not a cancel request: the worker is evicting the run; nothing to undo
            failed_step = self._progress.current_step
            reason = f"{failed_step}: {_describe(err)}"
            self._progress.state, self._progress.error = "compensating", reason
            # Shielded: a cancelled run still undoes what it did, however often it is
            # cancelled meanwhile (undos may be retrying through an outage).
            undoing = asyncio.ensure_future(self._compensate(undo, tenant_id, reason))
            while not undoing.done():
                try:
                    await asyncio.shield(undoing)
                except asyncio.CancelledError:
                    continue
            undoing.result()
            self._progress.state, self._progress.current_step = "failed", None
            if isinstance(err, asyncio.CancelledError):
                raise
            raise ApplicationError(
                f"Provisioning of tenant {tenant_id} failed at {reason}",
                type="ProvisioningFailed",
                non_retryable=True,
            ) from err
        self._progress.state, self._progress.current_step = "completed", None
        return self._progress

    async def _step(self, name: str, activity: Callable, tenant_id: str, options: dict) -> None:
        self._progress.current_step = name
        cancellation = workflow.ActivityCancellationType.TRY_CANCEL
        if self._wait_for_steps:
            cancellation = workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        await workflow.execute_activity(
            activity, tenant_id, cancellation_type=cancellation, **options
        )
        self._progress.steps_done.append(name)
        cancelled = workflow.cancellation_reason() is not None
        if self._wait_for_steps and cancelled and name != STEPS[-1]:
            # Cancelled while this step ran; it was let finish. Stop here and undo (unless
            # it was the last step: the tenant is active, there is nothing left to stop).
            raise asyncio.CancelledError()

    async def _compensate(self, undo: list, tenant_id: str, reason: str) -> None:
        """Run the undos in reverse. They retry until they succeed; one that meets an error
        no retry can fix is logged and named in the reason ``mark_failed`` records last."""
        failed: list[str] = []
        for activity, options in reversed(undo):
            args = [tenant_id]
            if activity is steps.tenant_mark_failed:
                args.append(reason + (f" (undo failed: {', '.join(failed)})" if failed else ""))
            try:
                await workflow.execute_activity(activity, args=args, **options)
            except ActivityError as exc:
                # Keep undoing the rest; each undo is idempotent and can be re-run by hand.
                workflow.logger.error("compensation %s failed: %s", activity.__name__, exc)
                failed.append(f"{activity.__name__}: {_describe(exc)}")


def _describe(err: BaseException) -> str:
    """The innermost message of an activity failure, for people to read."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    if isinstance(err, asyncio.CancelledError):
        return "cancelled"
    return getattr(err, "message", None) or str(err) or type(err).__name__
