"""Tenant lifecycle activities. Each calls one service and is safe to run twice."""

from accounts import services as accounts
from orchestration.activities import django_activity
from tenants import services as tenants
from tenants.models import TenantStatus


@django_activity
def tenant_mark_provisioning(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.PROVISIONING)


@django_activity
def tenant_mark_active(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.ACTIVE)


@django_activity
def tenant_mark_failed(tenant_id: str, reason: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.FAILED, error=reason)


@django_activity
def tenant_mark_deleting(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.DELETING)


@django_activity
def tenant_mark_deleted(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.DELETED)


@django_activity(heartbeat_every=5)
def tenant_create_schema(tenant_id: str) -> str:
    """Runs DDL in one transaction (template) or migration by migration."""
    return tenants.tenant_schema_create(tenant_id=tenant_id)


@django_activity(heartbeat_every=5)
def tenant_migrate_schema(tenant_id: str) -> None:
    tenants.tenant_schema_migrate(tenant_id=tenant_id)


@django_activity(heartbeat_every=5)
def tenant_drop_schema(tenant_id: str) -> bool:
    return tenants.tenant_schema_drop(tenant_id=tenant_id)


@django_activity
def tenant_seed_defaults(tenant_id: str) -> None:
    tenants.tenant_seed_defaults(tenant_id=tenant_id)


@django_activity
def tenant_create_domain(tenant_id: str) -> str:
    return tenants.domain_create_primary(tenant_id=tenant_id).domain


@django_activity
def tenant_delete_domains(tenant_id: str) -> int:
    return tenants.domain_delete_all(tenant_id=tenant_id)


@django_activity
def tenant_add_owner_membership(tenant_id: str) -> None:
    accounts.membership_create_owner(tenant_id=tenant_id)


@django_activity
def tenant_remove_owner_membership(tenant_id: str) -> None:
    accounts.membership_remove_owner(tenant_id=tenant_id)


@django_activity
def tenant_revoke_access(tenant_id: str) -> list[int]:
    """Deactivates memberships and revokes tokens; returns the two counts."""
    return list(accounts.tenant_access_revoke(tenant_id=tenant_id))


PROVISIONING = [
    tenant_mark_provisioning, tenant_create_schema, tenant_migrate_schema, tenant_create_domain,
    tenant_seed_defaults, tenant_add_owner_membership, tenant_mark_active,
    tenant_drop_schema, tenant_delete_domains, tenant_remove_owner_membership, tenant_mark_failed,
]  # fmt: skip
DELETION = [
    tenant_mark_deleting, tenant_revoke_access, tenant_drop_schema, tenant_delete_domains,
    tenant_mark_deleted,
]  # fmt: skip
ALL = list(dict.fromkeys(PROVISIONING + DELETION))
