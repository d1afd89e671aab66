"""An invitation to a tenant: email its link, wait for it to be accepted or revoked (the
``accepted`` and ``revoked`` signals), email it again on each ``resend`` signal, remind once
after ``remind_after_seconds``, and expire it after ``expire_after_seconds`` (a
compare-and-set: an acceptance that came first stands). Its timers are durable: a worker
restart, or Temporal's, moves nothing. The ``state`` query says where it is."""

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import people as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, MEDIUM, SHORT, within
    from orchestration.workflows._steps.inputs import (
        WorkflowInput,
        require_positive,
        require_reminder_first,
        require_uuid,
    )
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class TenantInvitationInput(WorkflowInput):
    invitation_id: str = ""  # required: the default fails validation
    remind_after_seconds: int = 3 * 24 * 3600
    expire_after_seconds: int = 7 * 24 * 3600
    # How long each email keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_uuid("invitation_id", self.invitation_id)
        require_reminder_first(
            "remind_after_seconds",
            self.remind_after_seconds,
            "expire_after_seconds",
            self.expire_after_seconds,
        )
        require_positive("retry_window_seconds", self.retry_window_seconds)


@dataclass
class InvitationState:
    state: str  # sending | waiting | reminded | accepted | revoked | expired | closed
    emails_sent: int


# Auto-upgrade: a run waits days for its invitation to be accepted; pinned, it would keep its
# build's workers alive that long. It moves to the current build at its next task, so every
# change to it goes behind workflow.patched (docs/versioning.md).
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.AUTO_UPGRADE, workflow="TenantInvitationWorkflow"
    ),
)
class TenantInvitationWorkflow:
    def __init__(self) -> None:
        self._outcome = ""
        self._resends = 0
        self._state = InvitationState(state="sending", emails_sent=0)

    @workflow.signal
    def accepted(self, _details: dict | None = None) -> None:
        self._outcome = self._outcome or "accepted"

    @workflow.signal
    def revoked(self, _details: dict | None = None) -> None:
        self._outcome = self._outcome or "revoked"

    @workflow.signal
    def resend(self, _details: dict | None = None) -> None:
        self._resends += 1

    @workflow.query
    def state(self) -> InvitationState:
        return self._state

    @workflow.run
    async def run(self, params: TenantInvitationInput | dict) -> InvitationState:
        params = TenantInvitationInput.parse(params)
        started = workflow.now()
        remind_at = started + timedelta(seconds=params.remind_after_seconds)
        expire_at = started + timedelta(seconds=params.expire_after_seconds)
        await self._send(params, reminder=False)
        self._state.state = "waiting"
        reminded = False
        while True:
            await self._wait_until(expire_at if reminded else remind_at)
            if self._outcome:
                return self._finish(self._outcome)
            if self._resends:
                self._resends -= 1
                await self._send(params, reminder=False)
            elif not reminded:
                await self._send(params, reminder=True)
                reminded, self._state.state = True, "reminded"
            else:
                expired = await workflow.execute_activity(
                    steps.invitation_expire,
                    params.invitation_id,
                    **within(SHORT, params.retry_window_seconds),
                )
                return self._finish("expired" if expired else "closed")

    async def _send(self, params: TenantInvitationInput, *, reminder: bool) -> None:
        # Emails retry through an SMTP or database outage for the whole retry window.
        sent = await workflow.execute_activity(
            steps.invitation_send,
            args=[params.invitation_id, reminder],
            **within(MEDIUM, params.retry_window_seconds),
        )
        self._state.emails_sent += 1 if sent else 0

    async def _wait_until(self, moment: datetime) -> None:
        """Until ``moment``, or sooner: an outcome or a resend."""
        remaining = moment - workflow.now()
        if remaining <= timedelta(0):
            return
        with suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: bool(self._outcome or self._resends), timeout=remaining
            )

    def _finish(self, state: str) -> InvitationState:
        self._state.state = state
        return self._state
