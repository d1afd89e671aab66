"""Activities of a scheduled deletion's grace period: the owner's emails and the purge at
its end. Each calls one service and is safe to run twice."""

from orchestration.activities import django_activity
from tenants.services import deletion


@django_activity(tenant=True)
def grace_email_owner(tenant_id: str, scheduling: int, reminder: bool) -> bool:
    """Emails the owner (scheduled, or the reminder); False when that scheduling has ended."""
    return deletion.tenant_deletion_email(
        tenant_id=tenant_id, scheduling=scheduling, reminder=reminder
    )


@django_activity(tenant=True)
def grace_purge_if_due(tenant_id: str, scheduling: int) -> bool:
    """Purges the tenant if it is still scheduled for deletion by ``scheduling``."""
    return deletion.tenant_purge_due(tenant_id=tenant_id, scheduling=scheduling)


GRACE = [grace_email_owner, grace_purge_if_due]
