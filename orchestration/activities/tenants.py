"""Tenant lifecycle activities. Each calls one service and is safe to run twice.

Each is declared with ``tenant_step``, which records the run's progress on the tenant, so
that the API and the admin read one row and never ask Temporal.
"""

import functools
from collections.abc import Callable

from django.db import transaction
from temporalio import activity

from orchestration import metrics
from orchestration.activities import django_activity, step_name
from tenants import exports
from tenants import services as tenants
from tenants.models import TenantStatus


def tenant_step(fn: Callable | None = None, *, heartbeat_every: float | None = None):
    """``django_activity`` for a step of a tenant's lifecycle run (first argument: the
    tenant id) that records itself on the tenant: ``current_step`` when it begins, then
    ``steps_done`` in the same transaction as the step's own writes. Steps that commit as
    they go (DDL, with ``heartbeat_every``) record right after. An undo marks the run
    compensating. Activities of any other run than the tenant's current one record nothing.
    Every line it logs carries ``tenant_id``.
    """

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def recorded(tenant_id: str, *args):
            info = activity.info()
            where = {
                "tenant_id": tenant_id,
                "workflow_id": info.workflow_id,
                "step": step_name(info.activity_type),
            }
            tenants.tenant_step_started(**where)
            if heartbeat_every:
                result = func(tenant_id, *args)
                tenants.tenant_step_done(**where)
                return result
            with transaction.atomic():
                result = func(tenant_id, *args)
                tenants.tenant_step_done(**where)
            return result

        return django_activity(recorded, heartbeat_every=heartbeat_every, tenant=True)

    return decorate(fn) if fn is not None else decorate


@tenant_step
def tenant_mark_provisioning(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.PROVISIONING)


@tenant_step
def tenant_mark_active(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.ACTIVE)
    metrics.run_finished_on_commit("provisioning", activity.info().workflow_id)


@tenant_step
def tenant_mark_failed(tenant_id: str, reason: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.FAILED, error=reason)


@tenant_step(heartbeat_every=5)
def tenant_wait_provisioning_settled(tenant_id: str) -> str:
    """Waits (heartbeating) while the tenant is being provisioned: a deletion asked for
    meanwhile has cancelled that run, which undoes what it built and marks the tenant
    failed (or completes, when the cancel came during its last step). Returns the status."""
    return tenants.tenant_wait_settled(tenant_id=tenant_id, poll_every=0.5)


@tenant_step
def tenant_mark_deleting(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.DELETING)


@tenant_step
def tenant_delete_exports(tenant_id: str) -> int:
    """Deletes the tenant's data exports, files and rows; returns how many. Idempotent."""
    return exports.tenant_exports_delete(tenant_id=tenant_id)


@tenant_step
def tenant_mark_deleted(tenant_id: str) -> None:
    tenants.tenant_set_status(tenant_id=tenant_id, status=TenantStatus.DELETED)
    metrics.run_finished_on_commit("deletion", activity.info().workflow_id)


@tenant_step(heartbeat_every=5)
def tenant_create_schema(tenant_id: str) -> str:
    """Runs DDL in one transaction (template) or migration by migration."""
    return tenants.tenant_schema_create(tenant_id=tenant_id)


@django_activity(tenant=True)
def tenant_claim_pooled_schema(tenant_id: str) -> str:
    """``create_schema``'s first try, run as a local activity: a warm pool schema, claimed
    in one transaction that also records ``create_schema`` done. ``""`` when the pool has
    none (the step then runs ``tenant_create_schema``, from the template)."""
    where = {
        "tenant_id": tenant_id,
        "workflow_id": activity.info().workflow_id,
        "step": step_name(tenant_create_schema.__name__),
    }
    with transaction.atomic():
        how = tenants.tenant_schema_claim_pooled(tenant_id=tenant_id)
        if how:  # begun and done at once: only ``done`` is worth a write
            tenants.tenant_step_done(**where)
    return how


@tenant_step(heartbeat_every=5)
def tenant_migrate_schema(tenant_id: str) -> None:
    tenants.tenant_schema_migrate(tenant_id=tenant_id)


@tenant_step(heartbeat_every=5)
def tenant_drop_schema(tenant_id: str) -> bool:
    return tenants.tenant_schema_drop(tenant_id=tenant_id)


@tenant_step
def tenant_seed_defaults(tenant_id: str) -> None:
    tenants.tenant_seed_defaults(tenant_id=tenant_id)


@tenant_step
def tenant_create_domain(tenant_id: str) -> str:
    return tenants.domain_create_primary(tenant_id=tenant_id).domain


@tenant_step
def tenant_delete_domains(tenant_id: str) -> int:
    return tenants.domain_delete_all(tenant_id=tenant_id)


@tenant_step
def tenant_add_owner_membership(tenant_id: str) -> None:
    tenants.membership_create_owner(tenant_id=tenant_id)


@tenant_step
def tenant_remove_owner_membership(tenant_id: str) -> None:
    tenants.membership_remove_owner(tenant_id=tenant_id)


@tenant_step
def tenant_revoke_access(tenant_id: str) -> int | list[int]:
    """Deactivates the tenant's memberships; returns how many. (Runs recorded before
    tokens stopped belonging to tenants got ``[memberships, tokens]``: the workflow decodes
    results with this annotation, so it admits both.)"""
    return tenants.tenant_access_revoke(tenant_id=tenant_id)
