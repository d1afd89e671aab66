"""Account activities: onboarding emails, what befalls the organisations of an owner who
never verifies, and token housekeeping. Safe to run twice."""

from datetime import timedelta

from accounts import services as accounts
from accounts.services import email_change, passwords
from orchestration import metrics
from orchestration.activities import django_activity
from tenants.services import organizations


@django_activity
def onboarding_send_verification(token_id: int, reminder: bool) -> bool:
    """Sends the welcome (or reminder) email; False when there is nothing left to verify."""
    return accounts.email_send_verification(token_id=token_id, reminder=reminder)


@django_activity
def onboarding_expire_verification(token_id: int) -> bool:
    expired = accounts.email_verification_expire(token_id=token_id)
    if expired:
        metrics.onboarding_outcome("expired")
    return expired


# The emails ``account_email_send`` sends, by name (the workflow's ``EMAILS``).
ACCOUNT_EMAILS = {
    "password_reset": passwords.password_reset_email_send,
    "email_change_confirm": email_change.email_change_confirm_send,
    "email_change_notice": email_change.email_change_notice_send,
}


@django_activity
def account_email_send(email: str, token_id: int) -> bool:
    """Sends one account email about token ``token_id``; False when its token is no longer
    usable (nothing sent)."""
    return ACCOUNT_EMAILS[email](token_id=token_id)


@django_activity
def onboarding_suspend_unverified(user_id: str) -> int:
    return organizations.tenants_suspend_unverified(owner_id=user_id)


@django_activity
def onboarding_reactivate_verified(user_id: str) -> int:
    return organizations.tenants_reactivate_verified(owner_id=user_id)


@django_activity
def onboarding_schedule_deletion(user_id: str) -> int:
    return organizations.tenants_delete_unverified(owner_id=user_id)


@django_activity
def tokens_delete_stale(retention_seconds: int, batch_size: int) -> int:
    """Deletes one batch; the workflow calls it until it returns 0."""
    return accounts.tokens_delete_stale(
        retention=timedelta(seconds=retention_seconds), batch_size=batch_size
    )


ONBOARDING = [
    onboarding_send_verification,
    onboarding_expire_verification,
    onboarding_suspend_unverified,
    onboarding_reactivate_verified,
    onboarding_schedule_deletion,
]
EMAILS = [account_email_send]
CLEANUP = [tokens_delete_stale]
