"""Account activities: onboarding emails, what befalls the organisations of an owner who
never verifies, and token housekeeping. Safe to run twice."""

from datetime import timedelta

from accounts import services as accounts
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
CLEANUP = [tokens_delete_stale]
