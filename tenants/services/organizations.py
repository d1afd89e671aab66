"""Another organisation for a user who already has an account."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from tenants.models import Role, Tenant, TenantStatus
from tenants.selectors import tenant_subdomain_taken
from tenants.services import (
    SUBDOMAIN_TAKEN,
    membership_create,
    tenant_check_fields,
    tenant_create,
    tenant_request_provisioning,
)


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
