"""The emails of an account's credentials, one run per request: a password reset's token
(``POST /api/v1/auth/password-reset/``), or an email change's confirmation token to the new
address followed by the notice to the old one (``POST /api/v1/me/email/``). The input
carries the token's id only; the addresses and the token's value are read (and derived) by
the activity. Each email retries through an SMTP or database outage for the retry window,
like every email.

One workflow for both: each is "email what this token is for, retrying", the texts live
in the accounts services, and the kinds differ only in which emails, in which order."""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import accounts as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, MEDIUM, within
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned

# What each kind of request emails, in order (the activity's email names).
EMAILS = {
    "password_reset": ("password_reset",),
    "email_change": ("email_change_confirm", "email_change_notice"),
}


@dataclass
class AccountEmailInput(WorkflowInput):
    kind: str = ""  # required: one of EMAILS
    token_id: int = 0  # required: the default fails validation
    # How long each email keeps retrying through an outage: STEP_RETRY_WINDOW.
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        if self.kind not in EMAILS:
            raise invalid("kind", f"must be one of {', '.join(EMAILS)}, got {self.kind!r}")
        require_positive("token_id", self.token_id)
        require_positive("retry_window_seconds", self.retry_window_seconds)


# Pinned: one or two emails, seconds long.
@workflow.defn(
    versioning_behavior=when_versioned(VersioningBehavior.PINNED, workflow="AccountEmailWorkflow"),
)
class AccountEmailWorkflow:
    @workflow.run
    async def run(self, params: AccountEmailInput | dict) -> list[bool]:
        """Whether each email went out (False: its token was no longer usable)."""
        params = AccountEmailInput.parse(params)
        sent = []
        for email in EMAILS[params.kind]:
            sent.append(
                await workflow.execute_activity(
                    steps.account_email_send,
                    args=[email, params.token_id],
                    **within(MEDIUM, params.retry_window_seconds),
                )
            )
        return sent
