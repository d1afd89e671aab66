"""Writes to a tenant's people: memberships, roles, ownership. Each service is one
transaction, under the tenant's row lock, so two changes of one tenant's people (two owners
demoting each other, say) take turns and the tenant always keeps an owner.

The rules (``tenants.roles`` says which role may do what):

* owners may do everything; admins invite, change roles below owner and remove members and
  admins; members only read, and may leave;
* the tenant's owner of record (``Tenant.owner``, the owner shown and emailed) always has
  the owner role: it cannot be demoted, removed, nor leave; ``tenant_transfer_ownership``
  moves the record to another member first. So a tenant never loses its last owner;
* a removed member's access ends with the transaction: every request checks the membership.
"""

import logging

from django.db import transaction

from accounts.models import User
from tenants.models import Membership, Role, Tenant, TenantStatus
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
