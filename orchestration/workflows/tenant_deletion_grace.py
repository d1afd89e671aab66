"""A scheduled deletion's grace period: email the owner -> wait (a durable timer) until
``remind_at`` -> email the reminder -> wait until ``purge_at`` -> purge, if the tenant is
still scheduled for deletion by this same scheduling.

The times are absolute (written when the deletion was scheduled), so a run started late (the
outbox waited out a Temporal outage) still reminds and purges when the owner was told. A
restore or a purge at once sends ``end_grace``, and the run ends without purging; without
that signal it would purge nothing either: the purge is a compare-and-set on the tenant's
scheduling (``tenants.services.deletion.tenant_purge_due``). One run per scheduling.
"""

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import deletion as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, MEDIUM, SHORT, within
    from orchestration.workflows._steps.inputs import (
        WorkflowInput,
        invalid,
        require_positive,
        require_uuid,
    )
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class TenantDeletionGraceInput(WorkflowInput):
    tenant_id: str = ""  # required: the default fails validation
    scheduling: int = 0  # required: the tenant's deletion_scheduling it waits on
    purge_at: str = ""  # required: ISO 8601, with its offset
    remind_at: str = ""  # ISO 8601; empty: no reminder
    notify: bool = True  # email the owner at once (False: the email limits refused it)
    # How long each step (or email) keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_uuid("tenant_id", self.tenant_id)
        require_positive("scheduling", self.scheduling)
        purge_at = _moment("purge_at", self.purge_at)
        if self.remind_at and _moment("remind_at", self.remind_at) >= purge_at:
            raise invalid("remind_at", "must be before purge_at")
        require_positive("retry_window_seconds", self.retry_window_seconds)


def _moment(field: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid(field, f"must be an ISO 8601 time, got {value!r}") from None
    if moment.utcoffset() is None:
        raise invalid(field, f"must say its offset from UTC, got {value!r}")
    return moment


@dataclass
class GraceState:
    state: str  # notifying | waiting | purged | ended (restored, or purged at once)
    reminded: bool


# Auto-upgrade: a run waits the whole grace period (TENANT_DELETION_GRACE, 30 days);
# pinned, it would keep its build's workers alive that long. It moves to the current build
# at its next task, so every change to it goes behind workflow.patched (docs/versioning.md).
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.AUTO_UPGRADE, workflow="TenantDeletionGraceWorkflow"
    ),
)
class TenantDeletionGraceWorkflow:
    def __init__(self) -> None:
        self._ended = False
        self._state = GraceState(state="notifying", reminded=False)

    @workflow.signal
    def end_grace(self, _details: dict | None = None) -> None:
        """The scheduling ended (restored, or purged at once): end without purging."""
        self._ended = True

    @workflow.query
    def state(self) -> GraceState:
        return self._state

    @workflow.run
    async def run(self, params: TenantDeletionGraceInput | dict) -> GraceState:
        params = TenantDeletionGraceInput.parse(params)
        owner = [params.tenant_id, params.scheduling]
        email = within(MEDIUM, params.retry_window_seconds)
        if params.notify and not self._ended:
            await workflow.execute_activity(steps.grace_email_owner, args=[*owner, False], **email)
        self._state.state = "waiting"
        if params.remind_at:
            if await self._ended_before(params.remind_at):
                return self._finish("ended")
            self._state.reminded = await workflow.execute_activity(
                steps.grace_email_owner, args=[*owner, True], **email
            )
        if await self._ended_before(params.purge_at):
            return self._finish("ended")
        purged = await workflow.execute_activity(
            steps.grace_purge_if_due, args=owner, **within(SHORT, params.retry_window_seconds)
        )
        return self._finish("purged" if purged else "ended")

    async def _ended_before(self, moment: str) -> bool:
        """Waits (a durable timer) until ``moment`` unless ``end_grace`` comes first; whether
        it came."""
        delay = datetime.fromisoformat(moment) - workflow.now()
        if delay > timedelta(0) and not self._ended:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._ended, timeout=delay)
        return self._ended

    def _finish(self, state: str) -> GraceState:
        self._state.state = state
        return self._state
