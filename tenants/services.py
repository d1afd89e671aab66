"""Writes to tenants. Each service is one transaction; callers pass keyword arguments."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from tenants import schemas, signals
from tenants.models import Domain, InvalidTransition, Tenant, TenantStatus, refuse_if_active
from tenants.validators import validate_subdomain
from tenants.workspace.defaults import seed_defaults

_NAME_MAX = Tenant._meta.get_field("name").max_length
SUBDOMAIN_TAKEN = "This subdomain is taken."


def tenant_check_fields(*, name: str, subdomain: str) -> dict[str, list[str]]:
    """Field errors of a would-be tenant, found without any SQL ({} when valid)."""
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
    return errors


def tenant_create(*, name: str, subdomain: str, owner) -> Tenant:
    """Create a ``pending`` tenant. No schema is made here (the provisioning workflow does).

    Input is validated before any SQL runs; a subdomain already taken, in any letter case,
    is a ``ValidationError`` on ``subdomain``.
    """
    if errors := tenant_check_fields(name=name, subdomain=subdomain):
        raise ValidationError(errors)
    name = name.strip()
    tenant = Tenant(name=name, subdomain=subdomain, owner=owner)
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as exc:
        if "subdomain" in str(exc):
            raise ValidationError({"subdomain": [SUBDOMAIN_TAKEN]}) from exc
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


def tenant_request_provisioning(*, tenant_id) -> Tenant:
    """Ask for a tenant to be provisioned: a ``pending`` tenant for the first time, or a
    ``failed`` one again (a retry, which moves it to ``provisioning`` at once so that a
    second click cannot start a second retry). Sends ``tenant_provisioning_requested``.

    Asking twice for a pending tenant is harmless: both requests name the same attempt.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.status == TenantStatus.FAILED:
            tenant.check_transition(TenantStatus.PROVISIONING)
            tenant.status = TenantStatus.PROVISIONING
            tenant.last_error = ""
            tenant.provisioning_attempt += 1
            tenant.save(
                update_fields=["status", "last_error", "provisioning_attempt", "updated_at"]
            )
        elif tenant.status != TenantStatus.PENDING:
            raise InvalidTransition(tenant.pk, tenant.status, TenantStatus.PROVISIONING)
        signals.tenant_provisioning_requested.send(
            sender=Tenant, tenant=tenant, attempt=tenant.provisioning_attempt
        )
    return tenant


def tenant_request_deletion(*, tenant_id) -> Tenant:
    """Mark a tenant ``deleting`` and send ``tenant_deletion_requested``.

    A tenant already ``deleting`` is left as it is and the signal is sent again (the
    deletion workflow id is fixed, so this cannot start a second run); ``deleted`` and
    ``provisioning`` tenants cannot be deleted.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.status != TenantStatus.DELETING:
            tenant.check_transition(TenantStatus.DELETING)
            tenant.status = TenantStatus.DELETING
            tenant.save(update_fields=["status", "updated_at"])
        signals.tenant_deletion_requested.send(sender=Tenant, tenant=tenant)
    return tenant


# --- steps of provisioning and deletion (each idempotent: safe to run twice) -------------


def tenant_schema_create(*, tenant_id) -> str:
    """Create the tenant's schema at the current migrations unless it exists.
    Returns ``"template"``, ``"migrations"`` or ``"exists"``."""
    return schemas.create_schema(Tenant.objects.get(pk=tenant_id).schema_name)


def tenant_schema_migrate(*, tenant_id) -> None:
    """Apply outstanding migrations to the tenant's schema (no-op when current)."""
    schemas.migrate_schema(Tenant.objects.get(pk=tenant_id).schema_name)


def tenant_schema_drop(*, tenant_id) -> bool:
    """Drop the tenant's schema if present; returns whether there was one. Refused for an
    active tenant (``TenantIsActive``)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    refuse_if_active(tenant, "schema")
    return schemas.drop_schema(tenant.schema_name)


def tenant_seed_defaults(*, tenant_id) -> None:
    """Create the tenant's default data, in its schema. Idempotent."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with schema_context(tenant.schema_name), transaction.atomic():
        seed_defaults()


def tenant_host(tenant: Tenant) -> str:
    return f"{tenant.subdomain}.{settings.TENANT_BASE_DOMAIN}"


def domain_create_primary(*, tenant_id) -> Domain:
    """Give the tenant its primary domain ``<subdomain>.<TENANT_BASE_DOMAIN>``. Idempotent."""
    tenant = Tenant.objects.get(pk=tenant_id)
    domain, _ = Domain.objects.get_or_create(
        domain=tenant_host(tenant), tenant=tenant, defaults={"is_primary": True}
    )
    return domain


def domain_delete_all(*, tenant_id) -> int:
    """Delete every domain of the tenant; returns how many there were. Refused for an
    active tenant (``TenantIsActive``)."""
    refuse_if_active(Tenant.objects.get(pk=tenant_id), "domains")
    deleted, _ = Domain.objects.filter(tenant_id=tenant_id).delete()
    return deleted
