"""Closing an account: the user's memberships, tokens and personal data removed, refused
while they are the only owner of an organisation that is not deleted. One transaction.

Here, not in ``accounts``, because the refusal and the memberships are the tenants'."""

import uuid

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.db import transaction

from accounts.models import EmailChange, Token, User
from tenants.models import Membership, Role, Tenant, TenantStatus
from tenants.selectors import tenants_solely_owned


class SoleOwner(Exception):
    """The account is the only owner of ``tenants`` (not deleted): closing it would leave
    them without one."""

    def __init__(self, tenants: list[Tenant]):
        self.tenants = tenants
        names = ", ".join(f"{t.name} ({t.subdomain})" for t in tenants)
        super().__init__(
            f"This account is the only owner of {names}. Delete "
            f"{'it' if len(tenants) == 1 else 'them'} first (DELETE /api/v1/tenants/<id>/), "
            f"then close the account."
        )


def _hand_over_ownership(user: User) -> None:
    """Each tenant, not deleted, whose owner of record is ``user`` gets its longest-standing
    other active owner as owner of record (one exists: ``account_close`` refuses otherwise),
    so that what befalls an owner (onboarding's suspension of an unverified owner's
    tenants, say) never befalls it for a closed account."""
    live = Tenant.objects.filter(owner=user).exclude(status=TenantStatus.DELETED)
    for tenant in live.select_for_update():
        successor = (
            Membership.objects.filter(tenant=tenant, role=Role.OWNER, is_active=True)
            .exclude(user=user)
            .order_by("created_at")
            .values_list("user_id", flat=True)
            .first()
        )
        tenant.owner_id = successor
        tenant.save(update_fields=["owner", "updated_at"])


def account_close(*, user: User) -> bool:
    """Close ``user``'s account, or raise ``SoleOwner`` (and change nothing) while they are
    the only owner of a tenant that is not deleted. Removes their memberships, tokens,
    pending email changes and login records (django-axes), hands the tenants they own of
    record (not deleted) to another owner, then deletes their row — or, when a deleted
    tenant's tombstone still names them its owner (``Tenant.owner`` protects the row),
    keeps the row anonymised: no email (a placeholder
    under ``.invalid``), no usable password, inactive, no permissions. Returns whether the
    row was deleted. The caller has checked the user's password.

    The per-address email counts (``accounts.EmailQuota``) stay: they are kept by address so
    that closing and re-creating an account does not lift them, and hold 24 hours of
    timestamps."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        blocking = tenants_solely_owned(user=user)
        if blocking:
            raise SoleOwner(blocking)
        email = user.email
        _hand_over_ownership(user)
        Membership.objects.filter(user=user).delete()
        EmailChange.objects.filter(user=user).delete()
        Token.objects.filter(user=user).delete()
        for record in (AccessAttempt, AccessFailureLog, AccessLog):
            record.objects.filter(username__iexact=email).delete()
        if not Tenant.objects.filter(owner=user).exists():
            user.delete()
            return True
        user.email = f"closed-{uuid.uuid4().hex}@closed.invalid"
        user.set_unusable_password()
        user.is_active = user.is_staff = user.is_superuser = False
        user.email_verified_at = user.last_login = None
        user.save()
        user.groups.clear()
        user.user_permissions.clear()
    return False
