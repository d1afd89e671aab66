"""Reads of tenants."""

import uuid

from django.db import connection
from django.db.models import Count
from django.db.models.functions import Lower

from tenants.models import LIVE, Membership, Role, Tenant, TenantStatus


def tenant_counts_by_status() -> dict[str, int]:
    """{status: number of tenants}, statuses without tenants left out (one GROUP BY)."""
    rows = Tenant.objects.order_by().values_list("status").annotate(n=Count("id"))
    return dict(rows)


def tenant_for_host(*, host: str) -> Tenant | None:
    """The live (active or suspended) tenant of ``host``, or None (unknown, pending, failed,
    deleted…). A suspended one is found so that its host can say so."""
    return (
        Tenant.objects.filter(domains__domain=host.lower(), status__in=LIVE)
        .only("id", "schema_name", "name", "subdomain", "status", "suspension_reason")
        .first()
    )


def tenant_subdomain_taken(*, subdomain: str) -> bool:
    """Whether a tenant (in any status, tombstones included) has this subdomain in any
    letter case. An indexed lookup on ``lower(subdomain)``; the unique index still decides
    races."""
    return (
        Tenant.objects.alias(subdomain_ci=Lower("subdomain"))
        .filter(subdomain_ci=subdomain.lower())
        .exists()
    )


def memberships_for_user(*, user):
    return Membership.objects.filter(user=user, is_active=True).select_related("tenant")


def existing_tenant_schemas() -> list[str]:
    """Schema names of tenants whose schema exists in the database, in creation order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        present = {row[0] for row in cursor.fetchall()}
    names = Tenant.objects.order_by("created_at").values_list("schema_name", flat=True)
    return [name for name in names if name in present]


_OWNER_SEES_WITHOUT_MEMBERSHIP = {TenantStatus.FAILED, TenantStatus.DELETING, TenantStatus.DELETED}


def tenant_visible_to(*, user, tenant_id) -> tuple[Tenant, str] | None:
    """The tenant and the user's role in it, or None when, for this user, it does not exist
    (also for a malformed id).

    Access is an active membership of a tenant that is not deleted. Where the platform
    itself took the membership away — a ``failed`` tenant whose owner membership the
    provisioning saga removed, a ``deleting`` or ``deleted`` one — the owner of record still
    sees it, so the signup's status URL can be followed to the end.
    """
    try:
        tenant_id = uuid.UUID(str(tenant_id))
    except ValueError:
        return None
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return None
    if tenant.owner_id == user.pk and tenant.status in _OWNER_SEES_WITHOUT_MEMBERSHIP:
        return tenant, Role.OWNER
    if tenant.status == TenantStatus.DELETED:
        return None
    role = (
        Membership.objects.filter(user=user, tenant=tenant, is_active=True)
        .values_list("role", flat=True)
        .first()
    )
    return None if role is None else (tenant, role)


def tenant_members(*, tenant: Tenant):
    """The tenant's active memberships with their users, owners first, then by joining."""
    order = {Role.OWNER: 0, Role.ADMIN: 1, Role.MEMBER: 2}
    members = Membership.objects.filter(tenant=tenant, is_active=True).select_related(
        "user", "tenant"
    )
    return sorted(members, key=lambda m: (order.get(m.role, 3), m.created_at))
