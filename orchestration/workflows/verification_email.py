"""One verification email, sent again on request (``POST /api/v1/auth/verify-email/resend/``
or the admin's *Resend verification email*). It retries through an SMTP or database outage
for the retry window, like every email; the user's onboarding run, if it is still waiting,
completes when they verify with either email's token."""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import accounts as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, MEDIUM, within
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class VerificationEmailInput(WorkflowInput):
    verification_token_id: int = 0  # required: the default fails validation
    # How long the email keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_positive("verification_token_id", self.verification_token_id)
        require_positive("retry_window_seconds", self.retry_window_seconds)


# Pinned: one email, seconds long.
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.PINNED, workflow="VerificationEmailWorkflow"
    ),
)
class VerificationEmailWorkflow:
    @workflow.run
    async def run(self, params: VerificationEmailInput | dict) -> bool:
        """True when the email went out; False when there was nothing left to verify."""
        params = VerificationEmailInput.parse(params)
        return await workflow.execute_activity(
            steps.onboarding_send_verification,
            args=[params.verification_token_id, False],
            **within(MEDIUM, params.retry_window_seconds),
        )
