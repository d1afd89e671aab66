"""Reads of tenants."""

import uuid

from django.db import connection

from tenants.models import Tenant, TenantStatus


def tenant_get(*, tenant_id) -> Tenant:
    return Tenant.objects.select_related("owner").get(pk=tenant_id)


def tenant_active_for_host(*, host: str) -> Tenant | None:
    """The active tenant that serves ``host``, or None (unknown, pending, failed, deleted…)."""
    return (
        Tenant.objects.filter(domains__domain=host.lower(), status=TenantStatus.ACTIVE)
        .only("id", "schema_name", "name", "subdomain", "status")
        .first()
    )


def existing_tenant_schemas() -> list[str]:
    """Schema names of tenants whose schema exists in the database, in creation order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        present = {row[0] for row in cursor.fetchall()}
    names = Tenant.objects.order_by("created_at").values_list("schema_name", flat=True)
    return [name for name in names if name in present]


def tenant_membership_for(*, user, tenant_id):
    """The user's active membership of the tenant, or None (also for a malformed id)."""
    from accounts.models import Membership

    try:
        tenant_id = uuid.UUID(str(tenant_id))
    except ValueError:
        return None
    return (
        Membership.objects.select_related("tenant")
        .filter(user=user, tenant_id=tenant_id, is_active=True)
        .exclude(tenant__status=TenantStatus.DELETED)
        .first()
    )
