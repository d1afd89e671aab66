"""Tenant lifecycle activities. Each calls one service and is safe to run twice.

Each is declared with ``tenant_step``, which records the run's progress on the tenant, so
that the API and the admin read one row and never ask Temporal.
"""

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import tracing
from orchestration import metrics
from orchestration.activities import as_failure, django_activity, step_name
from tenants import exports
from tenants import services as tenants
from tenants.models import TenantStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepBody:
    """What a step does, without its activity's recording, for ``tenant_run_steps``."""

    run: Callable  # (tenant_id) -> result
    commits_as_it_goes: bool = False  # DDL, migrations: never inside another transaction
    # A first try of step ``first_try_of`` (an activity name): a falsy result means "not
    # this way", and the group stops there.
    first_try_of: str = ""

    def label(self, name: str) -> str:
        """The step name progress and failures use."""
        return step_name(self.first_try_of or name)


# The steps of this module by activity name (a step activity's body is also
# ``inspect.unwrap(activity)``).
STEP_BODIES: dict[str, StepBody] = {}


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

        if func.__module__ == __name__:
            STEP_BODIES[func.__name__] = StepBody(func, commits_as_it_goes=bool(heartbeat_every))
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
    """The slow way, where the first try could not: migration by migration, heartbeating
    (or the template or pool, if one became usable since)."""
    return tenants.tenant_schema_create(tenant_id=tenant_id)


@django_activity(tenant=True)
def tenant_claim_pooled_schema(tenant_id: str) -> str:
    """``create_schema``'s first try, run as a local activity: a warm pool schema claimed,
    else the template replayed, in a transaction that also records ``create_schema`` done (a
    schema built on several connections commits on its own, complete, just before). ``""``
    when neither can give the schema (no usable template: the step then runs
    ``tenant_create_schema`` on the task queue, by migrations, heartbeating). The name is
    older than the template's part in it, and stays: recorded histories carry it."""
    where = {
        "tenant_id": tenant_id,
        "workflow_id": activity.info().workflow_id,
        "step": step_name(tenant_create_schema.__name__),
    }
    with transaction.atomic():
        how = tenants.tenant_schema_create_quickly(tenant_id=tenant_id)
        if how:  # begun and done at once: only ``done`` is worth a write
            tenants.tenant_step_done(**where)
    return how


STEP_BODIES[tenant_claim_pooled_schema.__name__] = StepBody(
    inspect.unwrap(tenant_claim_pooled_schema), first_try_of=tenant_create_schema.__name__
)


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


@django_activity(tenant=True)
def tenant_run_steps(tenant_id: str, names: list[str]) -> list:
    """Several steps of one run (by activity name, in order) as one local activity: one
    dispatch instead of one each. Consecutive steps that write in a transaction share one,
    which also records them done (and the step that comes next as current); a step that
    commits as it goes (a migration) runs between two and is recorded at once. A first
    try (the pool claim) that finds nothing ends the group: its transaction commits, and
    the result list is shorter than ``names`` (the workflow takes the step the long way).

    A failing step is rolled back with the others of its transaction, recorded as the run's
    current step, and named in the failure's details (the workflow reports it); a retry runs
    the group again, each step being idempotent. Returns the steps' results."""
    if unknown := [name for name in names if name not in STEP_BODIES]:
        raise ApplicationError(f"no such step: {', '.join(unknown)}", non_retryable=True)
    where = {"tenant_id": tenant_id, "workflow_id": activity.info().workflow_id}
    results: list = []
    waiting: list[str] = []  # steps for the next transaction

    def label(index: int) -> str:  # the step at ``index``, for progress ("" past the end)
        return STEP_BODIES[names[index]].label(names[index]) if index < len(names) else ""

    def run(name: str) -> None:
        try:
            with tracing.span(f"RunStep:{name}", {"tenant_id": tenant_id}):
                results.append(STEP_BODIES[name].run(tenant_id))
        except Exception as exc:
            raise _Failed(name, exc) from exc  # its transaction rolls back on the way out

    def commit_waiting(then: str) -> None:
        with transaction.atomic():
            for name in waiting:
                run(name)
            # A first try records its step itself, when it got somewhere.
            done = [step_name(n) for n in waiting if not STEP_BODIES[n].first_try_of]
            if STEP_BODIES[waiting[-1]].first_try_of and not results[-1]:
                then = ""  # found nothing: the step itself comes next, and records itself
            tenants.tenant_step_done(**where, step=done, then=then)
        waiting.clear()

    try:
        for index, name in enumerate(names):
            body = STEP_BODIES[name]
            if body.commits_as_it_goes:
                if waiting:
                    commit_waiting(then=label(index))
                run(name)  # recorded at once: it may take long, and it stays done
                tenants.tenant_step_done(**where, step=step_name(name), then=label(index + 1))
                continue
            waiting.append(name)
            if body.first_try_of:
                commit_waiting(then=label(index + 1))
                if not results[-1]:
                    return results
        if waiting:
            commit_waiting(then="")
    except _Failed as failed:
        failing = STEP_BODIES[failed.name].label(failed.name)
        try:  # the failing step is the current one (unless the database is what failed)
            tenants.tenant_step_done(**where, step=[], then=failing)
        except DatabaseError:
            logger.warning("could not record %s as the current step", failing)
        raise as_failure(failed.error, failing) from failed.error
    return results


class _Failed(Exception):
    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(name)
        self.name, self.error = name, error
