"""Deleting a live tenant with a grace period: scheduled, restored, or purged.

Deleting an active or suspended tenant schedules its purge ``TENANT_DELETION_GRACE``
seconds later: its host answers 404 at once, its schema and data stay (and stay current),
its tasks wait. Until ``purge_at`` its owner can restore it as it was; at ``purge_at`` the
scheduling's run (``TenantDeletionGraceWorkflow``) purges it through ``tenant_purge_due``,
which purges only that same scheduling. Operators can purge at once (``tenant_purge_now``).
Each service is one transaction under the tenant's row lock; a refused request changes
nothing.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import EmailKind
from accounts.services import EmailQuotaExceeded, email_quota_use
from tenants import signals
from tenants.models import InvalidTransition, SuspensionReason, Tenant, TenantStatus
from tenants.services import _who, tenant_request_deletion

logger = logging.getLogger(__name__)

# Where a deletion is scheduled from: a live tenant that is served or suspended. Any other
# deletable tenant (pending, provisioning, failed) has no data to keep and is deleted at once.
SCHEDULABLE = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED})


class GracePeriodOver(Exception):
    """A restore asked for at or after ``purge_at``: the purge is due, nothing changes."""

    def __init__(self, tenant: Tenant):
        self.tenant_id, self.purge_at = tenant.pk, tenant.purge_at
        super().__init__(
            f"Tenant {tenant.pk} can no longer be restored: its grace period ended at "
            f"{tenant.purge_at:%Y-%m-%d %H:%M:%S} UTC."
        )


def tenant_schedule_deletion(*, tenant: Tenant, actor=None) -> Tenant:
    """Schedule the deletion of an active or suspended tenant: ``deletion_scheduled`` with
    ``purge_at`` ``TENANT_DELETION_GRACE`` seconds from now, a reminder planned
    ``TENANT_DELETION_REMINDER_BEFORE`` seconds before it when the grace period is longer.
    Its suspension reason is kept, so a restore returns it to what it was. Sends
    ``tenant_deletion_scheduled``; the owner is emailed unless the per-recipient limits
    refuse it (the scheduling goes ahead all the same).

    A tenant already scheduled is returned unchanged (asking twice schedules once). With a
    grace of 0, and for a tenant with no data to keep (pending, provisioning, failed) or
    already ``deleting``, this is the purge at once (``tenant_request_deletion``). A
    ``deleted`` tenant raises ``InvalidTransition`` and nothing changes. Returns the tenant
    as saved."""
    grace = settings.TENANT_DELETION_GRACE
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().select_related("owner").get(pk=tenant.pk)
        if locked.status == TenantStatus.DELETION_SCHEDULED:
            return locked
        if grace == 0 or locked.status not in SCHEDULABLE:
            return tenant_request_deletion(tenant_id=locked.pk)
        locked.check_transition(TenantStatus.DELETION_SCHEDULED)
        now = timezone.now()
        before = settings.TENANT_DELETION_REMINDER_BEFORE
        locked.status = TenantStatus.DELETION_SCHEDULED
        locked.purge_at = now + timedelta(seconds=grace)
        locked.deletion_scheduled_at = now
        locked.deletion_scheduled_by = actor
        locked.deletion_remind_at = locked.purge_at - timedelta(seconds=before)
        if before >= grace:
            locked.deletion_remind_at = None
        locked.deletion_reminded_at = None
        locked.deletion_scheduling += 1
        locked.save(update_fields=[*_SCHEDULING_FIELDS, "status", "deletion_scheduling"])
        notify = _email_allowed(locked)
        signals.tenant_deletion_scheduled.send(
            sender=Tenant, tenant=locked, notify=notify, actor=actor
        )
    logger.info(
        "tenant %s deletion scheduled for %s by %s", locked.pk, locked.purge_at, _who(actor)
    )
    return locked


_SCHEDULING_FIELDS = [
    "purge_at",
    "deletion_scheduled_at",
    "deletion_scheduled_by",
    "deletion_remind_at",
    "deletion_reminded_at",
    "updated_at",
]


def _email_allowed(tenant: Tenant) -> bool:
    try:
        email_quota_use(recipient=tenant.owner.email, kind=EmailKind.TENANT_DELETION)
    except EmailQuotaExceeded as exc:
        logger.warning("tenant %s: no deletion email to its owner: %s", tenant.pk, exc)
        return False
    return True


def tenant_restore(*, tenant: Tenant, actor=None) -> Tenant:
    """Bring back a tenant scheduled for deletion, before its ``purge_at``, as it was: active,
    or suspended with the reason it had (active when that reason was an unverified owner who
    has verified since); served again, its held tasks released, every row
    intact (nothing was removed). Sends ``tenant_restored``; its scheduling's run ends
    without purging (and would purge nothing if that signal never reached it: the purge
    checks the scheduling). A tenant that is not scheduled raises ``InvalidTransition``, one
    whose ``purge_at`` has come ``GracePeriodOver``: nothing changes. Returns the tenant as
    saved."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().select_related("owner").get(pk=tenant.pk)
        if (
            locked.suspension_reason == SuspensionReason.UNVERIFIED
            and locked.owner.email_verified_at is not None
        ):
            # Suspended because its owner had not verified; they have since.
            locked.suspension_reason, locked.suspended_at = "", None
        back = TenantStatus.SUSPENDED if locked.suspension_reason else TenantStatus.ACTIVE
        if locked.status != TenantStatus.DELETION_SCHEDULED:
            raise InvalidTransition(locked.pk, locked.status, back)
        if timezone.now() >= locked.purge_at:
            raise GracePeriodOver(locked)
        locked.check_transition(back)
        locked.status = back
        for name in _SCHEDULING_FIELDS[:-1]:
            setattr(locked, name, None)
        locked.save(
            update_fields=[*_SCHEDULING_FIELDS, "status", "suspension_reason", "suspended_at"]
        )
        signals.tenant_restored.send(
            sender=Tenant, tenant=locked, scheduling=locked.deletion_scheduling, actor=actor
        )
    logger.info("tenant %s restored (%s) by %s", locked.pk, back, _who(actor))
    return locked


def tenant_purge_now(*, tenant: Tenant, actor=None) -> Tenant:
    """Purge a tenant at once, for operators (an erasure request): from ``deletion_scheduled``
    (its waiting run is ended) or any status a deletion can start from, ``deleting`` included
    (asked again). Its ``purge_at`` is cleared: it was not purged at a scheduled time. A
    ``deleted`` tenant raises ``InvalidTransition`` and nothing changes. Returns the tenant
    as saved."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        scheduling = 0
        if locked.status == TenantStatus.DELETION_SCHEDULED:
            scheduling = locked.deletion_scheduling
            locked.check_transition(TenantStatus.DELETING)
            locked.status, locked.purge_at = TenantStatus.DELETING, None
            locked.save(update_fields=["status", "purge_at", "updated_at"])
        locked = tenant_request_deletion(tenant_id=locked.pk, scheduling=scheduling)
    logger.info("tenant %s purged at once by %s", locked.pk, _who(actor))
    return locked


def tenant_purge_due(*, tenant_id, scheduling: int) -> bool:
    """The purge at the end of scheduling number ``scheduling``, a compare-and-set: only a
    tenant still ``deletion_scheduled`` for that same scheduling is purged
    (``tenant_request_deletion``); a restore, a purge at once or a later scheduling makes it
    a no-op. Returns whether this scheduling's purge happened; idempotent (asked again after
    it, the answer is still True)."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant_id)
        if locked.deletion_scheduling != scheduling:
            return False
        if locked.status in (TenantStatus.DELETING, TenantStatus.DELETED):
            return locked.purge_at is not None  # purged at purge_at, by an earlier try
        if locked.status != TenantStatus.DELETION_SCHEDULED:
            return False
        tenant_request_deletion(tenant_id=locked.pk)
    logger.info("tenant %s purged at the end of its grace period", tenant_id)
    return True


def tenant_deletion_email(*, tenant_id, scheduling: int, reminder: bool) -> bool:
    """Email the owner that their organisation's deletion is scheduled (or, ``reminder``, that
    its purge is near), with the date and how to restore it; a reminder is recorded
    (``deletion_reminded_at``). Sends nothing and returns False unless the tenant is still
    scheduled for that same scheduling. At-least-once: a retried activity may send twice."""
    tenant = Tenant.objects.select_related("owner").get(pk=tenant_id)
    if tenant.status != TenantStatus.DELETION_SCHEDULED or tenant.deletion_scheduling != scheduling:
        return False
    when = f"{tenant.purge_at:%Y-%m-%d %H:%M} UTC"
    subject = (
        f"Reminder: {tenant.name} will be deleted on {when}"
        if reminder
        else f"{tenant.name} is scheduled for deletion"
    )
    body = (
        f"The organisation {tenant.name} ({tenant.subdomain}) is scheduled for deletion: its "
        f"data will be deleted for good on {when}. Until then it can be restored, as it was, "
        f"by its owner: POST {settings.PUBLIC_BASE_URL}/api/v1/tenants/{tenant.pk}/restore/"
    )
    send_mail(subject, body, None, [tenant.owner.email])
    if reminder:
        Tenant.objects.filter(pk=tenant_id, deletion_scheduling=scheduling).update(
            deletion_reminded_at=timezone.now()
        )
    return True
