"""Writes to a tenant's people: memberships, roles, ownership. Each service is one
transaction, under the tenant's row lock, so two changes of one tenant's people (two owners
demoting each other, say) take turns and the tenant always keeps an owner.

The rules (``tenants.roles`` says which role may do what):

* owners may do everything; admins invite, change roles below owner and remove members and
  admins; members only read, and may leave;
* the tenant's owner of record (``Tenant.owner``, the owner shown and emailed) always has
  the owner role: it cannot be demoted, removed, nor leave; ``tenant_transfer_ownership``
  moves the record to another member first. So a tenant never loses its last owner;
* a removed member's access ends with the transaction: every request checks the membership;
* an invitation (by an owner or an admin, for a role they may grant) is emailed by its
  workflow, reminded once, and expires after ``INVITATION_TTL``; its link works once. An
  address that has an account accepts it logged in as that account; one that has none
  chooses a password, and its email counts as verified (the link proved it).

``actor`` is the member who asks; None is staff in the admin, whose permissions the admin
checks.
"""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import EmailKind, TokenPurpose, User, hash_token
from accounts.services import email_quota_use, secret_derive, token_issue
from accounts.services.people import user_create_verified
from tenants import signals
from tenants.models import (
    Invitation,
    InvitationStatus,
    Membership,
    Role,
    Tenant,
    TenantStatus,
)
from tenants.roles import Action, role_may, role_may_grant

logger = logging.getLogger(__name__)

# Tenants whose people can change: not one that failed, is being deleted or is gone (its
# memberships are the platform's to undo), nor a suspended one (frozen until reactivated).
OPEN = frozenset({TenantStatus.PENDING, TenantStatus.PROVISIONING, TenantStatus.ACTIVE})


class PeopleError(Exception):
    """A change of a tenant's people that is refused; nothing was changed."""


class NotAllowed(PeopleError):
    """The caller's role does not allow it (``403``)."""


class NotFound(PeopleError):
    """No such member or invitation in this tenant (``404``)."""


class Conflict(PeopleError):
    """The tenant's state does not allow it: its last owner, its owner of record, a tenant
    that is not open (``409``)."""


def membership_create(*, user: User, tenant: Tenant, role: str = Role.MEMBER) -> Membership:
    """Give ``user`` a role in ``tenant``; an existing membership is re-activated (idempotent)."""
    membership, _ = Membership.objects.update_or_create(
        user=user, tenant=tenant, defaults={"role": role, "is_active": True}
    )
    return membership


def _locked_open(tenant_id) -> Tenant:
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    if tenant.status not in OPEN:
        raise Conflict(f"This organisation is {tenant.status}: its people cannot change.")
    return tenant


def _role_of(tenant: Tenant, user) -> str | None:
    return (
        Membership.objects.filter(tenant=tenant, user=user, is_active=True)
        .values_list("role", flat=True)
        .first()
    )


def _member(tenant: Tenant, user_id) -> Membership:
    membership = (
        Membership.objects.select_related("user")
        .filter(tenant=tenant, user_id=user_id, is_active=True)
        .first()
    )
    if membership is None:
        raise NotFound("No such member of this organisation.")
    return membership


def _acting(tenant: Tenant, actor, action: Action, refusal: str) -> str:
    if actor is None:
        return Role.OWNER
    role = _role_of(tenant, actor)
    if role is None or not role_may(role, action):
        raise NotAllowed(refusal)
    return role


def _refuse_losing_an_owner(tenant: Tenant, membership: Membership, what: str) -> None:
    """``membership``, an owner's, is about to stop being one (``what``): refused for the
    owner of record and for the last owner."""
    if membership.role != Role.OWNER:
        return
    if membership.user_id == tenant.owner_id:
        raise Conflict(
            f"The owner of record cannot {what}: transfer the ownership to another member first."
        )
    others = (
        Membership.objects.filter(tenant=tenant, role=Role.OWNER, is_active=True)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise Conflict(f"The last owner cannot {what}.")


def membership_set_role(*, tenant_id, actor, user_id, role: str) -> Membership:
    """Give the member ``user_id`` the role ``role``, as ``actor``. An owner may give any
    role to anyone; an admin may make admins and members of admins and members. Raises
    ``NotAllowed``, ``NotFound`` or ``Conflict`` (the owner of record or the last owner
    would stop being an owner; a tenant that is not open), changing nothing."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    with transaction.atomic():
        tenant = _locked_open(tenant_id)
        mine = _acting(
            tenant, actor, Action.MANAGE_MEMBERS, "Only an owner or an admin can change roles."
        )
        membership = _member(tenant, user_id)
        if membership.role == Role.OWNER and mine != Role.OWNER:
            raise NotAllowed("Only an owner can change an owner's role.")
        if not role_may_grant(mine, role):
            raise NotAllowed(f"Only an owner can make someone {role}.")
        if role != Role.OWNER:
            _refuse_losing_an_owner(tenant, membership, "be given another role")
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
    logger.info("member %s of tenant %s is now %s (by user %s)", user_id, tenant_id, role, actor.pk)
    return membership


def membership_remove(*, tenant_id, actor, user_id) -> None:
    """Remove the member ``user_id`` from the tenant, as ``actor``: the member's own leaving
    (any role), or an owner removing anyone, or an admin removing an admin or a member. The
    membership is deleted: the member's next request about the tenant answers as if it did
    not exist. Raises ``NotAllowed``, ``NotFound`` or ``Conflict`` (the owner of record, the
    last owner; a tenant that is not open), changing nothing."""
    with transaction.atomic():
        tenant = _locked_open(tenant_id)
        leaving = str(actor.pk) == str(user_id)
        if leaving:
            membership = _member(tenant, actor.pk)
        else:
            mine = _acting(
                tenant,
                actor,
                Action.MANAGE_MEMBERS,
                "Only an owner or an admin can remove members.",
            )
            membership = _member(tenant, user_id)
            if membership.role == Role.OWNER and mine != Role.OWNER:
                raise NotAllowed("Only an owner can remove an owner.")
        _refuse_losing_an_owner(tenant, membership, "leave" if leaving else "be removed")
        membership.delete()
    how = "left" if leaving else f"was removed by user {actor.pk}"
    logger.info("member %s of tenant %s %s", user_id, tenant_id, how)


def tenant_transfer_ownership(*, tenant_id, actor, user_id) -> Tenant:
    """Make the member ``user_id`` the tenant's owner of record (``Tenant.owner``: the owner
    shown and emailed), with the owner role; the previous owner of record stays an owner
    (and may then change their own role, or leave). Only an owner may. Raises
    ``NotAllowed``, ``NotFound`` or ``Conflict`` (a tenant that is not open)."""
    with transaction.atomic():
        tenant = _locked_open(tenant_id)
        _acting(tenant, actor, Action.TRANSFER, "Only an owner can transfer the ownership.")
        membership = _member(tenant, user_id)
        if membership.role != Role.OWNER:
            membership.role = Role.OWNER
            membership.save(update_fields=["role"])
        if tenant.owner_id != membership.user_id:
            tenant.owner = membership.user
            tenant.save(update_fields=["owner", "updated_at"])
    logger.info("tenant %s owned by user %s (by user %s)", tenant_id, user_id, actor.pk)
    return tenant


# --- invitations ---------------------------------------------------------------------------


class InvitationInvalid(PeopleError):
    """The link is unknown, used, revoked or expired (``400``)."""


class LoginRequired(PeopleError):
    """The invited address has an account: accepting takes that account's login (``401``)."""


def _secret(invitation: Invitation) -> str:
    return secret_derive(Invitation.SECRET_PURPOSE, invitation.nonce)


def _normal_email(email: str) -> str:
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}) from exc
    return email


def invitation_create(*, tenant_id, actor, email: str, role: str = Role.MEMBER) -> Invitation:
    """Invite ``email`` to the tenant with ``role``, as ``actor`` (an owner, or an admin for
    the roles below owner): a ``pending`` invitation whose workflow emails its link (sent
    ``invitation_created``). Counts one invitation email to the address against its quota
    (``EmailQuotaExceeded`` otherwise, and nothing is recorded). Raises ``NotAllowed``,
    ``Conflict`` (the address is a member already, or has a pending invitation to this
    tenant; a tenant that is not open) or ``ValidationError`` (the email), changing
    nothing."""
    email = _normal_email(email)
    if role not in Role.values:
        raise ValidationError({"role": [f"{role!r} is not one of {', '.join(Role.values)}."]})
    now = timezone.now()
    with transaction.atomic():
        tenant = _locked_open(tenant_id)
        mine = _acting(tenant, actor, Action.INVITE, "Only an owner or an admin can invite.")
        if not role_may_grant(mine, role):
            raise NotAllowed(f"Only an owner can invite someone as {role}.")
        if Membership.objects.filter(
            tenant=tenant, user__email__iexact=email, is_active=True
        ).exists():
            raise Conflict("This address is a member already.")
        pending = Invitation.objects.filter(
            tenant=tenant, email=email, status=InvitationStatus.PENDING
        )
        # One whose workflow has not closed it yet, though its time is up, is expired now.
        pending.filter(expires_at__lte=now).update(status=InvitationStatus.EXPIRED, closed_at=now)
        if pending.exists():
            raise Conflict("This address has a pending invitation already: revoke it first.")
        email_quota_use(recipient=email, kind=EmailKind.INVITATION)
        nonce = secrets.token_hex(16)
        invitation = Invitation(
            tenant=tenant,
            email=email,
            role=role,
            invited_by=actor,
            nonce=nonce,
            key_hash=hash_token(secret_derive(Invitation.SECRET_PURPOSE, nonce)),
            expires_at=now + timedelta(seconds=settings.INVITATION_TTL),
        )
        try:
            with transaction.atomic():
                invitation.save()
        except IntegrityError:  # a concurrent invitation of the same address won
            raise Conflict("This address has a pending invitation already.") from None
        signals.invitation_created.send(sender=Invitation, invitation=invitation)
    logger.info(
        "invitation %s to tenant %s as %s by %s", invitation.pk, tenant_id, role, _who(actor)
    )
    return invitation


def _who(actor) -> str:
    return "staff" if actor is None else f"user {actor.pk}"


def _pending(tenant: Tenant, invitation_id) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update()
        .filter(tenant=tenant, pk=invitation_id, status=InvitationStatus.PENDING)
        .first()
    )
    if invitation is None:
        raise NotFound("No such pending invitation to this organisation.")
    return invitation


def invitation_revoke(*, tenant_id, actor, invitation_id) -> Invitation:
    """Revoke a pending invitation, as ``actor`` (an owner or an admin; None: staff): its
    link stops working at once and its workflow ends (sent ``invitation_closed``). Raises
    ``NotAllowed``, ``NotFound`` (no such pending invitation) or ``Conflict``."""
    with transaction.atomic():
        tenant = _locked_open(tenant_id)
        _acting(tenant, actor, Action.INVITE, "Only an owner or an admin can revoke invitations.")
        invitation = _pending(tenant, invitation_id)
        invitation.status = InvitationStatus.REVOKED
        invitation.closed_at = timezone.now()
        invitation.save(update_fields=["status", "closed_at"])
        signals.invitation_closed.send(sender=Invitation, invitation=invitation, outcome="revoked")
    logger.info("invitation %s to tenant %s revoked by %s", invitation.pk, tenant_id, _who(actor))
    return invitation


def invitation_resend(*, tenant_id, actor, invitation_id) -> Invitation:
    """Email a pending invitation's link again (its workflow sends it: sent
    ``invitation_resend_requested``), as ``actor`` (an owner or an admin; None: staff).
    Counts against the address's invitation quota (``EmailQuotaExceeded`` otherwise, and
    nothing goes out). The expiry stays. Raises ``NotAllowed``, ``NotFound`` or
    ``Conflict``."""
    with transaction.atomic():
        tenant = _locked_open(tenant_id)
        _acting(tenant, actor, Action.INVITE, "Only an owner or an admin can resend invitations.")
        invitation = _pending(tenant, invitation_id)
        if invitation.expires_at <= timezone.now():
            raise NotFound("This invitation has expired.")
        email_quota_use(recipient=invitation.email, kind=EmailKind.INVITATION)
        signals.invitation_resend_requested.send(sender=Invitation, invitation=invitation)
    logger.info("invitation %s to tenant %s resent by %s", invitation.pk, tenant_id, _who(actor))
    return invitation


INVALID_LINK = "Invalid, used, revoked or expired invitation."


def invitation_accept(*, raw_token: str, user=None, password: str | None = None):
    """Accept the invitation whose link holds ``raw_token``: its address joins the tenant
    with its role, the invitation is ``accepted`` (its link works no more; sent
    ``invitation_closed``), and an API token is issued to the account. Returns
    ``(membership, raw_api_token)``.

    The address's account, when it has one, must be the caller (``user``): anonymous is
    ``LoginRequired``, another account ``NotAllowed``. With no account, ``password`` makes
    one (Django's validators; ``ValidationError`` on ``password``), its email verified; a
    caller logged in as another account is ``NotAllowed``. An unknown, used, revoked or
    expired link is ``InvitationInvalid``; a tenant that is not open ``Conflict``. A member
    already keeps their role. One transaction, under the tenant's lock then the
    invitation's: two concurrent acceptances succeed once."""
    key_hash = hash_token(raw_token or "")
    tenant_id = Invitation.objects.filter(key_hash=key_hash).values_list("tenant_id", flat=True)
    with transaction.atomic():
        if not tenant_id:
            raise InvitationInvalid(INVALID_LINK)
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id[0])
        invitation = Invitation.objects.select_for_update().get(key_hash=key_hash)
        if invitation.status != InvitationStatus.PENDING or invitation.expires_at <= timezone.now():
            raise InvitationInvalid(INVALID_LINK)
        if tenant.status not in OPEN:
            raise Conflict(f"This organisation is {tenant.status}: it takes no new members.")
        account = User.objects.filter(email__iexact=invitation.email).first()
        caller = user if user is not None and user.is_authenticated else None
        if account is not None:
            if caller is None:
                raise LoginRequired(
                    "This address has an account: accept with its API token "
                    "(Authorization: Bearer)."
                )
            if caller.pk != account.pk:
                raise NotAllowed("This invitation is for another account.")
        elif caller is not None:
            raise NotAllowed("This invitation is for another address.")
        else:
            if not password:
                raise ValidationError(
                    {"password": ["This address has no account yet: choose a password."]}
                )
            account = user_create_verified(email=invitation.email, password=password)
        membership = Membership.objects.filter(tenant=tenant, user=account, is_active=True).first()
        if membership is None:
            membership = membership_create(user=account, tenant=tenant, role=invitation.role)
        invitation.status = InvitationStatus.ACCEPTED
        invitation.accepted_by = account
        invitation.closed_at = timezone.now()
        invitation.save(update_fields=["status", "accepted_by", "closed_at"])
        signals.invitation_closed.send(sender=Invitation, invitation=invitation, outcome="accepted")
        _, raw = token_issue(
            user=account,
            purpose=TokenPurpose.API,
            ttl=timedelta(days=settings.API_TOKEN_TTL_DAYS),
        )
    logger.info(
        "invitation %s accepted: user %s joined tenant %s as %s",
        invitation.pk,
        account.pk,
        tenant.pk,
        membership.role,
    )
    return membership, raw


# --- the invitation workflow's steps (each idempotent) ---------------------------------------


def invitation_send_email(*, invitation_id, reminder: bool = False) -> bool:
    """Email the invitation's link to its address (a reminder says so, and is recorded in
    ``reminded_at``). Returns False, sending nothing, once it is no longer pending or its
    time is up, and while its tenant takes no new members (suspended, failed, being
    deleted). At-least-once: a retried activity may send the same email twice."""
    invitation = Invitation.objects.select_related("tenant").get(pk=invitation_id)
    tenant = invitation.tenant
    if (
        invitation.status != InvitationStatus.PENDING
        or invitation.expires_at <= timezone.now()
        or tenant.status not in OPEN
    ):
        return False
    link = f"{settings.PUBLIC_BASE_URL}/api/v1/invitations/accept/#token={_secret(invitation)}"
    subject = f"{'Reminder: you' if reminder else 'You'} are invited to join {tenant.name}"
    body = (
        f"You are invited to join {tenant.name} as {invitation.get_role_display().lower()}.\n\n"
        f"Your link (it works once):\n\n{link}\n\n"
        f'To accept, POST {{"token": "<the text after #token=>"}} to '
        f"{settings.PUBLIC_BASE_URL}/api/v1/invitations/accept/ , with "
        f'"password" to choose one if this address has no account yet, or with your '
        f"account's API token if it has one.\n\n"
        f"It expires at {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
    )
    send_mail(subject, body, None, [invitation.email])
    if reminder:
        Invitation.objects.filter(pk=invitation_id, reminded_at=None).update(
            reminded_at=timezone.now()
        )
    return True


def invitation_expire(*, invitation_id) -> bool:
    """Expire the invitation if it is still pending (a compare-and-set: an acceptance or a
    revocation that came first stands). Returns whether it was pending."""
    return bool(
        Invitation.objects.filter(pk=invitation_id, status=InvitationStatus.PENDING).update(
            status=InvitationStatus.EXPIRED, closed_at=timezone.now()
        )
    )
