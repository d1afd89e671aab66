"""The provisioning saga's undos: they outlast an outage, and never tear down a live tenant."""

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.activities import as_failure, step_name
from orchestration.activities import tenants as steps
from orchestration.workflows import TenantProvisioningWorkflow
from orchestration.workflows.tenant_provisioning import PROVISIONING, TenantProvisioningInput
from tests.kit import wait_until_async
from tests.workers import events_once_cancel_reached_the_step


class FakeSteps:
    """Every provisioning activity, by name, recording calls. ``create_domain`` fails for
    good (unless ``domain_fails=False``); ``drop_schema`` fails ``outage`` times with a
    retryable error before it works. The step named ``hold`` waits for ``release`` (and
    then works, even ``create_domain``)."""

    def __init__(
        self, outage: int, hold: str | None = None, domain_fails: bool = True, pooled: bool = False
    ):
        self.pooled = pooled  # the pool claim (create_schema's first try) gets a schema
        self.calls: list[tuple] = []
        self.outage = outage
        self.hold = hold
        self.domain_fails = domain_fails
        self.release = asyncio.Event()

    @property
    def activities(self) -> list:
        def fake(real, body=None):
            @activity.defn(name=real.__name__)
            async def run(*args):
                self.calls.append((real.__name__, *args[1:]))
                if real.__name__ == self.hold:
                    await self.release.wait()  # no heartbeat: a cancel cannot reach it
                    return "acme.localhost" if real is steps.tenant_create_domain else None
                if body is not None:
                    return body()

            return run

        by_name: dict = {}

        @activity.defn(name=PROVISIONING.runner.__name__)
        async def run_steps(tenant_id, names):
            """Each named fake in turn, as the saga's runner runs the real steps."""
            results = []
            for name in names:
                try:
                    results.append(await by_name[name](tenant_id))
                except ApplicationError as exc:
                    raise as_failure(exc, step_name(name)) from exc
                if name == steps.tenant_claim_pooled_schema.__name__ and not results[-1]:
                    break  # a first try that found nothing ends the group
            return results

        def domain_fails():
            raise ApplicationError("no such domain table", non_retryable=True)

        def drop_fails_during_outage():
            if sum(c[0] == "tenant_drop_schema" for c in self.calls) <= self.outage:
                raise ApplicationError("database unavailable")  # retryable
            return True

        special = {steps.tenant_drop_schema: drop_fails_during_outage}
        if self.pooled:
            special[steps.tenant_claim_pooled_schema] = lambda: "pool"
        if self.domain_fails:
            special[steps.tenant_create_domain] = domain_fails
        steps_and_tries = [s.activity for s in PROVISIONING.steps]
        steps_and_tries += [s.first_try[0] for s in PROVISIONING.steps if s.first_try]
        scheduled = [a for a in PROVISIONING.activities if a is not PROVISIONING.runner]
        every = dict.fromkeys(steps_and_tries + scheduled)
        by_name.update((a.__name__, fake(a, special.get(a))) for a in every)
        by_name[PROVISIONING.runner.__name__] = run_steps
        return list(by_name.values())


async def test_undos_outlast_an_outage_longer_than_forward_retries(time_skipping_env):
    fake = FakeSteps(outage=12)  # forward steps give up after 10 attempts
    failure = await failed_run(fake, time_skipping_env.client)
    assert failure.cause.type == "ProvisioningFailed"
    # Undone in reverse, the tenant marked failed last, with the step that failed.
    assert [c[0] for c in fake.calls] == [
        "tenant_mark_provisioning",
        "tenant_claim_pooled_schema",
        "tenant_create_schema",
        "tenant_migrate_schema",
        "tenant_create_domain",
        # The steps after the schema run as one: every undo of theirs was registered before.
        "tenant_remove_owner_membership",
        "tenant_delete_domains",
        *["tenant_drop_schema"] * 13,
        "tenant_mark_failed",
    ]
    assert fake.calls[-1] == ("tenant_mark_failed", "create_domain: no such domain table")


async def test_a_schema_claimed_from_the_pool_is_undone_like_a_created_one(time_skipping_env):
    fake = FakeSteps(outage=0, pooled=True)
    failure = await failed_run(fake, time_skipping_env.client)
    assert failure.cause.type == "ProvisioningFailed"
    # The claim was the step: the template path never ran, and the drop undid the claim.
    assert names(fake) == [
        "mark_provisioning",
        "claim_pooled_schema",
        "migrate_schema",
        "create_domain",
        "remove_owner_membership",
        "delete_domains",
        "drop_schema",
        "mark_failed",
    ]


async def failed_run(fake: FakeSteps, client) -> WorkflowFailureError:
    """Run a provisioning on fake steps to its end; the failure it must end with."""
    queue, tenant_id = f"saga-{uuid.uuid4()}", str(uuid.uuid4())
    async with Worker(
        client,
        task_queue=queue,
        workflows=[TenantProvisioningWorkflow],
        activities=fake.activities,
    ):
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                TenantProvisioningWorkflow.run,
                TenantProvisioningInput(tenant_id=tenant_id),
                id=f"saga-{uuid.uuid4()}",
                task_queue=queue,
            )
    return failure.value


def names(fake: FakeSteps) -> list[str]:
    return [c[0].removeprefix("tenant_") for c in fake.calls]


async def run_until(fake: FakeSteps, client, *, started: str, then):
    """Start a provisioning run on fake steps; once ``started`` was called, ``await then(h)``;
    return the run's result, or the ``WorkflowFailureError`` it ended with."""
    queue = f"saga-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[TenantProvisioningWorkflow],
        activities=fake.activities,
    ):
        handle = await client.start_workflow(
            TenantProvisioningWorkflow.run,
            TenantProvisioningInput(tenant_id=str(uuid.uuid4())),
            id=f"saga-{uuid.uuid4()}",
            task_queue=queue,
        )
        await wait_until_async(
            lambda: started in names(fake), timeout=5, what=f"{started} to be called"
        )
        await then(handle)
        try:
            return await handle.result()
        except WorkflowFailureError as failure:
            return failure


async def test_a_cancel_lets_the_running_step_finish_then_undoes(time_skipping_env):
    # create_schema: since ``local-db-steps`` the one forward step that is a task-queue
    # activity, so the cancel reaches it as an activity cancel.
    fake = FakeSteps(outage=0, hold="tenant_create_schema")

    async def cancel_while_held(handle):
        await handle.cancel()
        after = await wait_until_async(
            lambda: events_once_cancel_reached_the_step(handle),
            timeout=10,
            what="the run to act on the cancel",
        )
        assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" not in after  # no undo was even scheduled
        assert names(fake)[-1] == "create_schema"  # no undo beside the running step
        fake.release.set()

    failure = await run_until(
        fake, time_skipping_env.client, started="create_schema", then=cancel_while_held
    )
    assert type(failure.cause).__name__ == "CancelledError"
    assert names(fake) == [
        "mark_provisioning",
        "claim_pooled_schema",
        "create_schema",
        "drop_schema",
        "mark_failed",
    ]
    assert fake.calls[-1][1] == "create_schema: cancelled"


async def test_a_cancel_during_the_undos_does_not_abandon_them(time_skipping_env):
    fake = FakeSteps(outage=3)  # create_domain fails; drop_schema fails 3 times first

    failure = await run_until(
        fake, time_skipping_env.client, started="drop_schema", then=lambda h: h.cancel()
    )
    assert failure.cause.type == "ProvisioningFailed"
    assert names(fake)[-5:] == [*["drop_schema"] * 4, "mark_failed"]


async def test_a_cancel_during_the_last_step_leaves_an_active_tenant(time_skipping_env):
    fake = FakeSteps(outage=0, hold="tenant_mark_active", domain_fails=False)

    async def cancel_then_release(handle):
        await handle.cancel()
        # Let the cancel request be recorded before the step ends (mark_active is a local
        # activity: the cancel reaches the run, not a task-queue activity).
        await wait_until_async(
            lambda: cancel_requested(handle), timeout=30, what="the cancel to be recorded"
        )
        fake.release.set()

    progress = await run_until(
        fake, time_skipping_env.client, started="mark_active", then=cancel_then_release
    )
    assert not isinstance(progress, Exception), repr(progress.cause)
    assert progress.state == "completed"  # nothing was left to stop
    assert names(fake)[-1] == "mark_active"  # and no undo of a live tenant


async def cancel_requested(handle) -> bool:
    history = await handle.fetch_history()
    cancel = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    return any(event.event_type == cancel for event in history.events)


# --- the guard: an undo that comes too late never breaks a live tenant ---------------------


@pytest.mark.django_db(transaction=True)
def test_teardown_steps_refuse_an_active_tenant(owner):
    from django.db import connection

    from tenants.models import Domain, Membership, TenantIsActive, TenantStatus
    from tenants.services import (
        membership_create_owner,
        membership_remove_owner,
        tenant_schema_drop,
    )
    from tenants.services.domains import domain_create_primary, domain_delete_all
    from tests.factories import TenantFactory

    tenant = TenantFactory(owner=owner)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{tenant.schema_name}"')
    domain_create_primary(tenant_id=tenant.pk)
    membership_create_owner(tenant_id=tenant.pk)
    type(tenant).objects.filter(pk=tenant.pk).update(status=TenantStatus.ACTIVE)
    for undo in (tenant_schema_drop, domain_delete_all, membership_remove_owner):
        with pytest.raises(TenantIsActive):
            undo(tenant_id=tenant.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [tenant.schema_name])
        assert cursor.fetchone() is not None
        cursor.execute(f'DROP SCHEMA "{tenant.schema_name}"')
    assert Domain.objects.filter(tenant=tenant).count() == 1
    assert Membership.objects.filter(tenant=tenant).count() == 1
