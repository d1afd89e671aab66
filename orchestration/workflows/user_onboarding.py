"""User onboarding: send the verification email, wait for the ``email_verified`` signal,
remind once after ``remind_after_seconds``, give up (revoke the token) after
``expire_after_seconds``. An owner who still has not verified then loses their
organisations: suspended (``unverified``) at ``suspend_after_seconds``, their deletion
scheduled at ``delete_after_seconds`` (each counted from signup; ``0`` skips the stage). A
verification while suspended makes them active again. The ``state`` query says where it
is."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import accounts as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, MEDIUM, SHORT, within
    from orchestration.workflows._steps.inputs import (
        WorkflowInput,
        invalid,
        require_positive,
        require_uuid,
    )
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class UserOnboardingInput(WorkflowInput):
    user_id: str = ""  # required: the default fails validation
    verification_token_id: int = 0  # required: the default fails validation
    remind_after_seconds: int = 24 * 3600
    expire_after_seconds: int = 7 * 24 * 3600
    # 0: the stage is skipped (and so in runs started before these fields existed).
    suspend_after_seconds: int = 0
    delete_after_seconds: int = 0
    # How long each step (or email) keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_uuid("user_id", self.user_id)
        require_positive("verification_token_id", self.verification_token_id)
        require_positive("remind_after_seconds", self.remind_after_seconds)
        require_positive("expire_after_seconds", self.expire_after_seconds)
        if self.remind_after_seconds >= self.expire_after_seconds:
            raise invalid("remind_after_seconds", "must be less than expire_after_seconds")
        later = self.expire_after_seconds
        for name in ("suspend_after_seconds", "delete_after_seconds"):
            value = getattr(self, name)
            if value < 0 or 0 < value <= later:
                raise invalid(name, f"must be 0 (never) or more than {later}")
            later = value or later
        require_positive("retry_window_seconds", self.retry_window_seconds)


@dataclass
class OnboardingState:
    # sending | waiting | reminded | verified | expired | suspended | deletion_scheduled
    state: str
    reminders_sent: int


# Auto-upgrade: a run waits days for the email to be verified; pinned, it would keep its
# build's workers alive that long. It moves to the current build at its next task, so
# every change to it still goes behind workflow.patched (docs/versioning.md).
ABANDONED_PATCH = "onboarding-abandoned-signups"


@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.AUTO_UPGRADE, workflow="UserOnboardingWorkflow"
    ),
)
class UserOnboardingWorkflow:
    def __init__(self) -> None:
        self._verified = False
        self._state = OnboardingState(state="sending", reminders_sent=0)

    @workflow.signal
    def email_verified(self, _details: dict | None = None) -> None:
        self._verified = True

    @workflow.query
    def state(self) -> OnboardingState:
        return self._state

    @workflow.run
    async def run(self, params: UserOnboardingInput | dict) -> OnboardingState:
        params = UserOnboardingInput.parse(params)
        token_id = params.verification_token_id
        # Emails retry through an SMTP or database outage for the whole retry window.
        email = within(MEDIUM, params.retry_window_seconds)
        await workflow.execute_activity(
            steps.onboarding_send_verification, args=[token_id, False], **email
        )
        self._state.state = "waiting"
        if await self._wait_verified(params.remind_after_seconds):
            return self._finish("verified")
        await workflow.execute_activity(
            steps.onboarding_send_verification, args=[token_id, True], **email
        )
        self._state.state, self._state.reminders_sent = "reminded", 1
        if await self._wait_verified(params.expire_after_seconds - params.remind_after_seconds):
            return self._finish("verified")
        short = within(SHORT, params.retry_window_seconds)
        await workflow.execute_activity(steps.onboarding_expire_verification, token_id, **short)
        if workflow.patched(ABANDONED_PATCH):
            return await self._abandoned(params)
        return self._finish("expired")

    async def _abandoned(self, params: UserOnboardingInput) -> OnboardingState:
        """The stages after expiry; each one's activity acts only on an owner still
        unverified, so a verification that races a timer wins."""
        short = within(SHORT, params.retry_window_seconds)
        elapsed = params.expire_after_seconds
        suspended = False
        if params.suspend_after_seconds:
            if await self._wait_verified(params.suspend_after_seconds - elapsed):
                return self._finish("verified")
            await workflow.execute_activity(
                steps.onboarding_suspend_unverified, params.user_id, **short
            )
            self._state.state, elapsed, suspended = "suspended", params.suspend_after_seconds, True
        if params.delete_after_seconds:
            if await self._wait_verified(params.delete_after_seconds - elapsed):
                return await self._verified_late(params, suspended)
            await workflow.execute_activity(
                steps.onboarding_schedule_deletion, params.user_id, **short
            )
            return self._finish("deletion_scheduled")
        if suspended:
            # No deletion stage: the organisations stay suspended until the owner verifies.
            await workflow.wait_condition(lambda: self._verified)
            return await self._verified_late(params, suspended)
        return self._finish("expired")

    async def _verified_late(self, params: UserOnboardingInput, suspended: bool):
        if suspended:
            await workflow.execute_activity(
                steps.onboarding_reactivate_verified,
                params.user_id,
                **within(SHORT, params.retry_window_seconds),
            )
        return self._finish("verified")

    async def _wait_verified(self, seconds: int) -> bool:
        try:
            await workflow.wait_condition(
                lambda: self._verified, timeout=timedelta(seconds=seconds)
            )
        except TimeoutError:
            return False
        return True

    def _finish(self, state: str) -> OnboardingState:
        self._state.state = state
        return self._state
