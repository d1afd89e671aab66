"""Reads of tenants."""

import uuid

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.utils import timezone

from tenants.models import (
    ANSWERING,
    Domain,
    DomainKind,
    Membership,
    Role,
    Tenant,
    TenantStatus,
)


def tenant_counts_by_status() -> dict[str, int]:
    """{status: number of tenants}, statuses without tenants left out (one GROUP BY)."""
    rows = Tenant.objects.order_by().values_list("status").annotate(n=Count("id"))
    return dict(rows)


def domain_for_host(*, host: str) -> Domain | None:
    """The domain row of ``host`` with its tenant, when the tenant answers (active or
    suspended), or None (unknown host; a pending, failed, deleted tenant's, or one scheduled
    for deletion). Whether it
    serves, redirects or answers 404 is the row's (``Domain.serves``, its kind, its expiry).
    One indexed query."""
    return (
        Domain.objects.filter(domain=host.lower(), tenant__status__in=ANSWERING)
        .select_related("tenant")
        .only(
            "id",
            "domain",
            "kind",
            "status",
            "expires_at",
            "tenant__id",
            "tenant__schema_name",
            "tenant__database",
            "tenant__name",
            "tenant__subdomain",
            "tenant__status",
            "tenant__suspension_reason",
        )
        .first()
    )


def subdomain_host(subdomain: str) -> str:
    """The host of a subdomain: ``<subdomain>.<TENANT_BASE_DOMAIN>``."""
    return f"{subdomain}.{settings.TENANT_BASE_DOMAIN}"


def tenant_subdomain_taken(*, subdomain: str, except_tenant_id=None) -> bool:
    """Whether a tenant (in any status, tombstones included) has this subdomain in any
    letter case, or a tenant still holds its host as a previous subdomain (until its
    ``expires_at``). ``except_tenant_id``: that tenant's own subdomain and held hosts do not
    count. Indexed lookups; the unique indexes still decide races."""
    tenants = Tenant.objects.alias(subdomain_ci=Lower("subdomain")).filter(
        subdomain_ci=subdomain.lower()
    )
    held = Domain.objects.filter(
        domain=subdomain_host(subdomain.lower()),
        kind=DomainKind.PREVIOUS,
        expires_at__gt=timezone.now(),
    )
    if except_tenant_id is not None:
        tenants = tenants.exclude(pk=except_tenant_id)
        held = held.exclude(tenant_id=except_tenant_id)
    return tenants.exists() or held.exists()


def tenant_domains(*, tenant_id, kind: str) -> list[Domain]:
    """The tenant's domains of ``kind``, by name."""
    return list(Domain.objects.filter(tenant_id=tenant_id, kind=kind).order_by("domain"))


def memberships_for_user(*, user):
    return Membership.objects.filter(user=user, is_active=True).select_related("tenant")


def existing_tenant_schemas(database: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Schema names of the tenants of ``database`` whose schema exists there, in creation
    order."""
    with connections[database].cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        present = {row[0] for row in cursor.fetchall()}
    names = Tenant.objects.filter(database=database).order_by("created_at")
    return [name for name in names.values_list("schema_name", flat=True) if name in present]


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


def tenants_solely_owned(*, user) -> list[Tenant]:
    """The tenants, not deleted, that ``user`` owns (of record, or by an active owner
    membership) and no one else owns by an active owner membership; oldest first."""
    others = Membership.objects.filter(role=Role.OWNER, is_active=True).exclude(user=user)
    owned = Q(owner=user) | Q(
        memberships__user=user, memberships__role=Role.OWNER, memberships__is_active=True
    )
    return list(
        Tenant.objects.filter(owned)
        .exclude(status=TenantStatus.DELETED)
        .exclude(pk__in=others.values("tenant_id"))
        .distinct()
        .order_by("created_at")
    )


def tenant_members(*, tenant: Tenant):
    """The tenant's active memberships with their users, owners first, then by joining."""
    order = {Role.OWNER: 0, Role.ADMIN: 1, Role.MEMBER: 2}
    members = Membership.objects.filter(tenant=tenant, is_active=True).select_related(
        "user", "tenant"
    )
    return sorted(members, key=lambda m: (order.get(m.role, 3), m.created_at))
