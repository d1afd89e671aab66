"""TenantDeletionGraceWorkflow: its durable timers on the time-skipping server (stand-in
activities under the real names), a worker restart in the middle of the grace period, and
the whole path with the real activities, relay and dev server: schedule -> emails -> purge,
and schedule -> restore with every row intact."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django_tenants.utils import schema_context
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.workflows import TenantDeletionGraceInput, TenantDeletionGraceWorkflow
from tenants.models import Tenant, TenantStatus, deletion_grace_workflow_id
from tenants.schemas.create import schema_exists
from tenants.services.deletion import tenant_restore, tenant_schedule_deletion
from tenants.workspace.models import Project
from tests.kit import run_async, wait_until, wait_until_async
from tests.workers import BackgroundWorker, settled, workflow_exists, workflow_result

DAY = timedelta(days=1)


class Steps:
    """The grace run's activities under their real names, recording each call with the
    (skipped) time it was scheduled at."""

    def __init__(self, *, purges: bool = True):
        self.calls: list[tuple[str, list, datetime]] = []

        @activity.defn(name="grace_email_owner")
        async def email(tenant_id: str, scheduling: int, reminder: bool) -> bool:
            self._record("reminder" if reminder else "email", [tenant_id, scheduling])
            return True

        @activity.defn(name="grace_purge_if_due")
        async def purge(tenant_id: str, scheduling: int) -> bool:
            self._record("purge", [tenant_id, scheduling])
            return purges

        self.activities = [email, purge]

    def _record(self, name: str, args: list) -> None:
        self.calls.append((name, args, activity.info().scheduled_time))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def at(self, name: str) -> datetime:
        (moment,) = [when for n, _, when in self.calls if n == name]
        return moment


async def grace_input(env, *, grace=30 * DAY, remind_before=3 * DAY, **fields):
    now = await env.get_current_time()
    purge_at = now + grace
    remind_at = (purge_at - remind_before).isoformat() if remind_before else ""
    return TenantDeletionGraceInput(
        tenant_id=str(uuid.uuid4()),
        scheduling=1,
        purge_at=purge_at.isoformat(),
        remind_at=remind_at,
        **fields,
    )


async def start(env, queue: str, params):
    return await env.client.start_workflow(
        TenantDeletionGraceWorkflow.run, params, id=f"grace-{uuid.uuid4()}", task_queue=queue
    )


def worker(env, queue: str, steps: Steps, **options) -> Worker:
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[TenantDeletionGraceWorkflow],
        activities=steps.activities,
        **options,
    )


async def test_the_grace_period_emails_reminds_then_purges_on_time(time_skipping_env):
    steps, queue = Steps(), f"grace-{uuid.uuid4()}"
    params = await grace_input(time_skipping_env)
    async with worker(time_skipping_env, queue, steps):
        result = await (await start(time_skipping_env, queue, params)).result()
    assert (result.state, result.reminded) == ("purged", True)
    assert steps.names() == ["email", "reminder", "purge"]
    assert all(args == [params.tenant_id, 1] for _, args, _ in steps.calls)
    assert steps.at("reminder") >= datetime.fromisoformat(params.remind_at)
    assert steps.at("reminder") < datetime.fromisoformat(params.purge_at)
    assert steps.at("purge") >= datetime.fromisoformat(params.purge_at)


async def test_a_restore_before_purge_at_ends_the_run_without_purging(time_skipping_env):
    steps, queue = Steps(), f"grace-{uuid.uuid4()}"
    params = await grace_input(time_skipping_env)
    async with worker(time_skipping_env, queue, steps):
        handle = await start(time_skipping_env, queue, params)
        await time_skipping_env.sleep(2 * DAY)
        await handle.signal(TenantDeletionGraceWorkflow.end_grace, {})
        result = await handle.result()
    assert (result.state, result.reminded) == ("ended", False)
    assert steps.names() == ["email"]


async def test_a_purge_that_finds_the_scheduling_over_ends_the_run(time_skipping_env):
    """The end_grace signal never came (the outbox row failed, say): the purge's
    compare-and-set finds the tenant restored and does nothing."""
    steps, queue = Steps(purges=False), f"grace-{uuid.uuid4()}"
    params = await grace_input(time_skipping_env, remind_before=None, notify=False)
    async with worker(time_skipping_env, queue, steps):
        result = await (await start(time_skipping_env, queue, params)).result()
    assert result.state == "ended"
    assert steps.names() == ["purge"]  # no email (the limits refused it), no reminder planned


async def test_a_worker_restart_mid_timer_loses_nothing_and_repeats_nothing(time_skipping_env):
    steps, queue = Steps(), f"grace-{uuid.uuid4()}"
    params = await grace_input(time_skipping_env)
    # No cache, hence no sticky queue: the time-skipping server would hold the run's next
    # task for the stopped worker's sticky queue and, that task pending, never skip time.
    async with worker(time_skipping_env, queue, steps, max_cached_workflows=0):
        handle = await start(time_skipping_env, queue, params)

        async def waiting_on_its_timer() -> bool:
            events = [e async for e in handle.fetch_history_events()]
            return any(e.HasField("timer_started_event_attributes") for e in events)

        await wait_until_async(waiting_on_its_timer, timeout=30, what="the run's first timer")
    assert steps.names() == ["email"]
    # A new worker (a deploy, a crash): no cache, the run is replayed from its history.
    async with worker(time_skipping_env, queue, steps):
        result = await handle.result()
    assert result.state == "purged"
    assert steps.names() == ["email", "reminder", "purge"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"purge_at": ""}, "purge_at"),
        ({"purge_at": "2027-01-06T16:00:00"}, "purge_at"),  # no offset
        ({"scheduling": 0}, "scheduling"),
        ({"remind_at": "2027-02-01T00:00:00+00:00"}, "remind_at"),  # after purge_at
    ],
)
async def test_invalid_input_fails_the_run_at_once_naming_the_field(
    time_skipping_env, change, field
):
    queue = f"grace-{uuid.uuid4()}"
    arguments = {
        "tenant_id": str(uuid.uuid4()),
        "scheduling": 1,
        "purge_at": "2027-01-06T16:00:00+00:00",
        **change,
    }
    async with worker(time_skipping_env, queue, Steps()):
        with pytest.raises(WorkflowFailureError) as failure:
            await time_skipping_env.client.execute_workflow(
                "TenantDeletionGraceWorkflow",
                arguments,
                id=f"grace-{uuid.uuid4()}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.details) == ("InvalidInput", (field,))


# --- real activities, relay and dev server ---------------------------------------------------


def grace_result(temporal, tenant) -> dict:
    """The result of the tenant's first grace run, once the relay has started it."""
    workflow_id = deletion_grace_workflow_id(tenant.pk, 1)
    wait_until(lambda: workflow_exists(temporal, workflow_id), timeout=30, what="the grace run")
    return run_async(workflow_result(temporal, workflow_id))


def test_a_scheduled_tenant_is_purged_at_purge_at_after_its_emails(
    temporal, queue_prefix, active_tenant, settings
):
    settings.TENANT_DELETION_GRACE = 4
    settings.TENANT_DELETION_REMINDER_BEFORE = 2
    tenant = active_tenant("acme")
    with BackgroundWorker(temporal):
        tenant = tenant_schedule_deletion(tenant=tenant)
        result = grace_result(temporal, tenant)
        settled(tenant.pk, TenantStatus.DELETED, timeout=60)
    assert (result["state"], result["reminded"]) == ("purged", True)
    assert not schema_exists(tenant.schema_name)
    subjects = [m.subject for m in mail.outbox]
    assert subjects[0] == "Acme is scheduled for deletion"
    assert subjects[1].startswith("Reminder: Acme will be deleted on ")
    assert len(subjects) == 2
    row = Tenant.objects.get(pk=tenant.pk)
    assert row.deletion_reminded_at is not None
    assert row.deleted_at >= row.purge_at


def test_a_restore_ends_the_run_and_every_row_is_intact(
    temporal, queue_prefix, active_tenant, settings
):
    settings.TENANT_DELETION_GRACE = 3600
    tenant = active_tenant("acme")
    with schema_context(tenant.schema_name):
        Project.objects.bulk_create([Project(name=f"p{n}") for n in range(25)])
    with BackgroundWorker(temporal):
        tenant = tenant_schedule_deletion(tenant=tenant)
        wait_until(lambda: len(mail.outbox) == 1, timeout=60, what="the scheduling's email")
        tenant_restore(tenant=tenant)
        result = grace_result(temporal, tenant)
    assert (result["state"], result["reminded"]) == ("ended", False)
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE
    with schema_context(tenant.schema_name):
        assert sorted(Project.objects.values_list("name", flat=True)) == sorted(
            f"p{n}" for n in range(25)
        )
