"""Writes to tenants. Each service is one transaction; callers pass keyword arguments."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.models import Tenant, TenantStatus
from tenants.validators import validate_subdomain

_NAME_MAX = Tenant._meta.get_field("name").max_length


def tenant_create(*, name: str, subdomain: str, owner) -> Tenant:
    """Create a ``pending`` tenant. No schema is made here (the provisioning workflow does).

    Input is validated before any SQL runs; a subdomain already taken, in any letter case,
    is a ``ValidationError`` on ``subdomain``.
    """
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Enter a name."]
    elif len(name) > _NAME_MAX:
        errors["name"] = [f"A name has at most {_NAME_MAX} characters."]
    try:
        validate_subdomain(subdomain)
    except ValidationError as exc:
        errors["subdomain"] = exc.messages
    if errors:
        raise ValidationError(errors)

    tenant = Tenant(name=name, subdomain=subdomain, owner=owner)
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as exc:
        if "subdomain" in str(exc):
            raise ValidationError({"subdomain": ["This subdomain is taken."]}) from exc
        raise
    return tenant


def tenant_set_status(*, tenant_id, status: str, error: str = "") -> Tenant:
    """Move a tenant along its lifecycle, under a row lock.

    Setting the status it already has is a no-op (safe to retry from an activity); any other
    move the lifecycle does not allow raises ``InvalidTransition``.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.status == status:
            return tenant
        tenant.check_transition(status)
        tenant.status = status
        now = timezone.now()
        if status == TenantStatus.FAILED:
            tenant.last_error = error
        elif status == TenantStatus.PROVISIONING:
            tenant.last_error = ""
        elif status == TenantStatus.ACTIVE:
            tenant.provisioned_at = now
        elif status == TenantStatus.DELETED:
            tenant.deleted_at = now
        tenant.save(
            update_fields=["status", "last_error", "provisioned_at", "deleted_at", "updated_at"]
        )
    return tenant
