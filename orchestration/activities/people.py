"""Activities of a tenant's people: the invitation emails and the invitation's expiry. Each
takes the invitation's id only (never its address or its link). Safe to run twice."""

from orchestration.activities import django_activity
from tenants.services import people


@django_activity
def invitation_send(invitation_id: str, reminder: bool) -> bool:
    """Emails the invitation's link (or the reminder); False when it is no longer pending."""
    return people.invitation_send_email(invitation_id=invitation_id, reminder=reminder)


@django_activity
def invitation_expire(invitation_id: str) -> bool:
    """Expires the invitation unless it was accepted or revoked first."""
    return people.invitation_expire(invitation_id=invitation_id)


INVITATION = [invitation_send, invitation_expire]
