"""Organisations of an account: another one for a user who already has an account, and
what happens to those of an owner who never verifies their email."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from tenants.models import InvalidTransition, Role, SuspensionReason, Tenant, TenantStatus
from tenants.selectors import tenant_subdomain_taken
from tenants.services import (
    SUBDOMAIN_TAKEN,
    tenant_check_fields,
    tenant_create,
    tenant_reactivate,
    tenant_request_provisioning,
    tenant_suspend,
)
from tenants.services.deletion import tenant_schedule_deletion
from tenants.services.people import membership_create


class OwnerLimitReached(Exception):
    """The user already owns ``TENANTS_PER_OWNER`` organisations that are not deleted."""

    def __init__(self, owned: int):
        self.owned = owned
        super().__init__(
            f"You already own {owned} organisations, the most one account may own "
            "(deleted ones do not count)."
        )


def organization_create(*, owner: User, organization_name: str, subdomain: str) -> Tenant:
    """Create a ``pending`` tenant owned by ``owner``, their owner membership, and ask for
    it to be provisioned (``tenant_provisioning_requested``) — one transaction, nothing
    waits for Temporal. Returns the tenant.

    Field errors are a ``ValidationError`` keyed as the API names the fields
    (``organization_name``, ``subdomain``); an owner who already owns
    ``TENANTS_PER_OWNER`` tenants that are not deleted gets ``OwnerLimitReached``. The
    owner's row is locked while counting, so two concurrent requests cannot both pass the
    limit.
    """
    errors = tenant_check_fields(name=organization_name, subdomain=subdomain)
    if "name" in errors:
        errors["organization_name"] = errors.pop("name")
    with transaction.atomic():
        if "subdomain" not in errors and tenant_subdomain_taken(subdomain=subdomain):
            errors["subdomain"] = [SUBDOMAIN_TAKEN]
        if errors:
            raise ValidationError(errors)
        User.objects.select_for_update().only("pk").get(pk=owner.pk)
        owned = Tenant.objects.filter(owner=owner).exclude(status=TenantStatus.DELETED).count()
        if owned >= settings.TENANTS_PER_OWNER:
            raise OwnerLimitReached(owned)
        try:
            tenant = tenant_create(name=organization_name, subdomain=subdomain, owner=owner)
        except ValidationError as exc:
            raise ValidationError({"subdomain": exc.message_dict["subdomain"]}) from exc
        membership_create(user=owner, tenant=tenant, role=Role.OWNER)
        return tenant_request_provisioning(tenant_id=tenant.pk)


# --- abandoned signups: an owner who never verified their email (UserOnboardingWorkflow) ---
# Each acts only while the owner is still unverified, tenant by tenant under its row lock,
# and skips a tenant already moved on: safe to run twice, and a verification that races the
# workflow's timer wins.


def _owned_while_unverified(owner_id, statuses) -> list[Tenant]:
    if User.objects.filter(pk=owner_id, email_verified_at__isnull=False).exists():
        return []
    return list(Tenant.objects.filter(owner_id=owner_id, status__in=statuses))


def tenants_suspend_unverified(*, owner_id) -> int:
    """Suspend (``unverified``) each active tenant of an owner who has not verified their
    email. Returns how many were suspended."""
    done = 0
    for tenant in _owned_while_unverified(owner_id, [TenantStatus.ACTIVE]):
        try:
            tenant_suspend(tenant=tenant, reason=SuspensionReason.UNVERIFIED)
        except InvalidTransition:
            continue  # moved on since it was read
        done += 1
    return done


def tenants_reactivate_verified(*, owner_id) -> int:
    """Make active again each tenant suspended for ``unverified``, once its owner has
    verified their email. Returns how many."""
    if not User.objects.filter(pk=owner_id, email_verified_at__isnull=False).exists():
        return 0
    done = 0
    unverified = Tenant.objects.filter(
        owner_id=owner_id,
        status=TenantStatus.SUSPENDED,
        suspension_reason=SuspensionReason.UNVERIFIED,
    )
    for tenant in unverified:
        try:
            tenant_reactivate(tenant=tenant)
        except InvalidTransition:
            continue
        done += 1
    return done


def tenants_delete_unverified(*, owner_id) -> int:
    """Schedule the deletion of each tenant of an owner who has not verified their email:
    active ones, and those suspended for ``unverified`` (not those suspended for another
    reason, which an operator decides on); the owner can restore them within
    ``TENANT_DELETION_GRACE``. Returns how many."""
    done = 0
    for tenant in _owned_while_unverified(owner_id, [TenantStatus.ACTIVE, TenantStatus.SUSPENDED]):
        if tenant.status == TenantStatus.SUSPENDED and (
            tenant.suspension_reason != SuspensionReason.UNVERIFIED
        ):
            continue
        try:
            tenant_schedule_deletion(tenant=tenant)
        except InvalidTransition:
            continue
        done += 1
    return done
