"""User onboarding: send the verification email, wait for the ``email_verified`` signal,
remind once after ``remind_after_seconds``, give up (revoke the token) after
``expire_after_seconds``. The ``state`` query says where it is."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import accounts as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, MEDIUM, SHORT, within
    from orchestration.workflows._steps.inputs import (
        WorkflowInput,
        require_positive,
        require_reminder_first,
        require_uuid,
    )
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class UserOnboardingInput(WorkflowInput):
    user_id: str = ""  # required: the default fails validation
    verification_token_id: int = 0  # required: the default fails validation
    remind_after_seconds: int = 24 * 3600
    expire_after_seconds: int = 7 * 24 * 3600
    # How long each step (or email) keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_uuid("user_id", self.user_id)
        require_positive("verification_token_id", self.verification_token_id)
        require_reminder_first(
            "remind_after_seconds",
            self.remind_after_seconds,
            "expire_after_seconds",
            self.expire_after_seconds,
        )
        require_positive("retry_window_seconds", self.retry_window_seconds)


@dataclass
class OnboardingState:
    state: str  # sending | waiting | reminded | verified | expired
    reminders_sent: int


# Auto-upgrade: a run waits days for the email to be verified; pinned, it would keep its
# build's workers alive that long. It moves to the current build at its next task, so
# every change to it still goes behind workflow.patched (docs/versioning.md).
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
        await workflow.execute_activity(
            steps.onboarding_expire_verification,
            token_id,
            **within(SHORT, params.retry_window_seconds),
        )
        return self._finish("expired")

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
