"""Tenant lifecycle activities. Each calls one service and is safe to run twice.

Each step is declared with ``tenant_step``: an activity, and the step's body (``step_body``)
that a saga's runner (``steps_runner``) runs together with others as one local activity.
Either way the body runs through ``_run_steps``, the one place that records a run's progress
on the tenant, so that the API and the admin read one row and never ask Temporal.
"""

import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
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
from tenants.services import domains

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepBody:
    """What a step does, without the recording of progress around it (``_run_steps`` does
    that). ``tenant_step`` gives each step activity one, as ``step_body``; a saga's
    declaration says which steps run together, and as what (``_steps.saga.Saga``)."""

    name: str  # its activity's name
    run: Callable  # (tenant_id, *args) -> result
    commits_as_it_goes: bool = False  # DDL, migrations: never inside another transaction
    # The step it is a first try of: a falsy result means "not this way", nothing was done.
    first_try_of: str = ""
    # A truthy result says why the run has nothing to do (it is superseded).
    may_end_run: bool = False

    @property
    def step(self) -> str:
        """The step's name in the run's progress."""
        return self.first_try_of or step_name(self.name)

    def ends_group(self, result) -> bool:
        """Whether ``result`` stops the steps after this one: this one did nothing."""
        return bool(result) if self.may_end_run else bool(self.first_try_of) and not result


def tenant_step(fn: Callable | None = None, *, heartbeat_every: float | None = None):
    """``django_activity`` for a step of a tenant's lifecycle run (first argument: the tenant
    id), recorded on the tenant by ``_run_steps``; its ``step_body`` is what a saga's runner
    runs. Steps that commit as they go (DDL) say ``heartbeat_every``. Every line it logs
    carries ``tenant_id``."""

    def decorate(func: Callable) -> Callable:
        body = StepBody(func.__name__, func, commits_as_it_goes=bool(heartbeat_every))

        @functools.wraps(func)
        def step(tenant_id: str, *args):
            return _run_steps(tenant_id, [body], *args, grouped=False)[0]

        defined = django_activity(step, heartbeat_every=heartbeat_every, tenant=True)
        defined.step_body = body
        return defined

    return decorate(fn) if fn is not None else decorate


def steps_runner(bodies: Mapping[str, StepBody], *, name: str = "tenant_run_steps") -> Callable:
    """The activity that runs several steps of one run, by activity name, as one (a saga's
    runner, run as a local activity: one dispatch instead of one each). ``bodies`` are the
    steps it may run, from the saga's declaration (``Saga.runner``); a name outside them is
    refused. Returns the steps' results: fewer than the names when one ended the group."""
    known = dict(bodies)

    def run_steps(tenant_id: str, names: list[str]) -> list:
        if unknown := [n for n in names if n not in known]:
            raise ApplicationError(f"no such step: {', '.join(unknown)}", non_retryable=True)
        return _run_steps(tenant_id, [known[n] for n in names], grouped=True)

    run_steps.__name__ = run_steps.__qualname__ = name
    runner = django_activity(run_steps, tenant=True)
    runner.step_bodies = known
    return runner


def _run_steps(tenant_id: str, steps: list[StepBody], *args, grouped: bool) -> list:
    """Runs ``steps`` in order and records the run's progress on the tenant: the one place
    that does. Consecutive steps that write in a transaction share one, which also records
    them done and names the step that comes next as current; a step that commits as it goes
    (DDL) runs between two and is recorded done at once. A step alone (an activity, not
    ``grouped``) is named current before it begins; one outside the run's plan is an undo,
    and the run is then seen compensating. A step whose result ends the group (a first try
    that found nothing, a run found superseded) commits what came before and stops: its
    step is not done, and the results are fewer than the steps.

    A failing step is rolled back with the others of its transaction and stays the run's
    current step; in a group it is recorded so and named in the failure's details (the
    workflow reports it). A retry runs the steps again, each being idempotent. An activity of
    any other run than the tenant's current one records nothing (``tenants.tenant_step_done``).
    """
    where = {"tenant_id": tenant_id, "workflow_id": activity.info().workflow_id}
    results: list = []

    def label(index: int) -> str:  # the step at ``index``, for progress ("" past the end)
        return steps[index].step if index < len(steps) else ""

    def run(body: StepBody) -> bool:
        """Runs ``body``; whether it ended the group."""
        span = tracing.span(f"RunStep:{body.name}", {"tenant_id": tenant_id}) if grouped else None
        try:
            with span or contextlib.nullcontext():
                results.append(body.run(tenant_id, *args))
        except Exception as exc:
            if not grouped:  # the activity's own failure (a cancel stays one)
                raise
            raise _Failed(body, exc) from exc  # its transaction rolls back on the way out
        return body.ends_group(results[-1])

    def record(ran: list[StepBody], *, ended: bool, then: int) -> None:
        outcomes = zip(ran, results[-len(ran) :], strict=True)
        done = [body.step for body, result in outcomes if not body.ends_group(result)]
        tenants.tenant_step_done(**where, step=done, then="" if ended else label(then))

    if not grouped:
        tenants.tenant_step_started(**where, step=steps[0].step)
    index, ended = 0, False
    try:
        while index < len(steps) and not ended:
            if steps[index].commits_as_it_goes:  # recorded at once: it may take long
                ended = run(steps[index])
                index += 1
                record(steps[index - 1 : index], ended=ended, then=index)
                continue
            with transaction.atomic():
                begun = index
                while index < len(steps) and not steps[index].commits_as_it_goes and not ended:
                    ended = run(steps[index])
                    index += 1
                record(steps[begun:index], ended=ended, then=index)
    except _Failed as failed:
        try:  # the failing step is the current one (unless the database is what failed)
            tenants.tenant_step_done(**where, step=[], then=failed.body.step)
        except DatabaseError:
            logger.warning("could not record %s as the current step", failed.body.step)
        raise as_failure(failed.error, failed.body.step) from failed.error
    return results


class _Failed(Exception):
    def __init__(self, body: StepBody, error: Exception) -> None:
        super().__init__(body.step)
        self.body, self.error = body, error


@tenant_step
def tenant_mark_provisioning(tenant_id: str) -> str:
    """``""``, or the status of a tenant a deletion got to first (``deleting``, ``deleted``):
    the run is then superseded, and nothing was done."""
    return tenants.tenant_begin_provisioning(tenant_id=tenant_id)


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


@tenant_step
def tenant_claim_pooled_schema(tenant_id: str) -> str:
    """``create_schema``'s first try (``Step.first_try``): a warm pool schema claimed, else
    the template replayed, in the transaction that records ``create_schema`` done (a schema
    built on several connections commits on its own, complete, just before). ``""`` when
    neither can give the schema (no usable template: the step then runs
    ``tenant_create_schema`` on the task queue, by migrations, heartbeating)."""
    return tenants.tenant_schema_create_quickly(tenant_id=tenant_id)


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
    return domains.domain_create_primary(tenant_id=tenant_id).domain


@tenant_step
def tenant_delete_domains(tenant_id: str) -> int:
    return domains.domain_delete_all(tenant_id=tenant_id)


@tenant_step
def tenant_add_owner_membership(tenant_id: str) -> None:
    tenants.membership_create_owner(tenant_id=tenant_id)


@tenant_step
def tenant_remove_owner_membership(tenant_id: str) -> None:
    tenants.membership_remove_owner(tenant_id=tenant_id)


@tenant_step
def tenant_revoke_access(tenant_id: str) -> int:
    """Deactivates the tenant's memberships; returns how many."""
    return tenants.tenant_access_revoke(tenant_id=tenant_id)
