"""The domain workflows: a previous subdomain's release and a custom domain's verification
(their timers, on the time-skipping server, with stand-in activities), then end to end on
the real services: a custom domain verified against a DNS server on loopback and served
from the tenant's schema; its record removed, the scheduled re-check warns and stops it; a
worker stopped mid-timer and started again loses nothing and does nothing twice."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.receivers import (
    custom_domain_verification_workflow_id,
    previous_domain_release_workflow_id,
)
from orchestration.schedules import custom_domains_schedule_id, sync_schedules
from orchestration.workflows import (
    CustomDomainsRecheckInput,
    CustomDomainVerificationInput,
    CustomDomainVerificationWorkflow,
    PreviousDomainReleaseInput,
    PreviousDomainReleaseWorkflow,
)
from tenants.models import CustomDomainStatus, Domain, TenantStatus
from tenants.services.domains import (
    custom_domain_add,
    domain_create_primary,
    tenant_change_subdomain,
    txt_record_name,
)
from tests.factories import TenantFactory
from tests.kit import run_async, wait_until
from tests.workers import (
    BackgroundWorker,
    event_types,
    triggered_run_result,
    workflow_exists,
    workflow_result,
)

DAY = 24 * 3600


class Clocked:
    """Stand-ins under the real activity names that record the (skipped) time of each
    call and answer from a script."""

    def __init__(self, env, answers: list):
        self.env, self.answers, self.calls = env, list(answers), []

        async def now() -> float:
            return (await env.get_current_time()).timestamp()

        @activity.defn(name="domain_release_previous")
        async def release(domain_id: int) -> int:
            self.calls.append(("release", await now()))
            return self.answers.pop(0)

        @activity.defn(name="custom_domain_verify")
        async def verify(domain_id: int) -> str:
            self.calls.append(("verify", await now()))
            return self.answers.pop(0)

        @activity.defn(name="custom_domain_expire")
        async def expire(domain_id: int) -> bool:
            self.calls.append(("expire", await now()))
            return True

        self.activities = [release, verify, expire]

    def offsets(self, start: float) -> list[tuple[str, int]]:
        return [(name, round(at - start)) for name, at in self.calls]


async def run(env, workflow, params, answers):
    stand_ins = Clocked(env, answers)
    queue = f"domains-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[workflow], activities=stand_ins.activities
    ):
        start = (await env.get_current_time()).timestamp()
        result = await env.client.execute_workflow(
            workflow.run, params, id=f"wf-{uuid.uuid4()}", task_queue=queue
        )
    return (vars(result) if result is not None else None), stand_ins.offsets(start)


async def test_a_previous_domain_is_released_when_its_hold_ends(time_skipping_env):
    params = PreviousDomainReleaseInput(domain_id=7, hold_seconds=30 * DAY)
    _, calls = await run(time_skipping_env, PreviousDomainReleaseWorkflow, params, [0])
    assert calls == [("release", 30 * DAY)]


async def test_a_hold_that_is_not_over_yet_is_waited_out_again(time_skipping_env):
    # The row's expires_at has the last word: an hour left when the timer fires, an hour more.
    params = PreviousDomainReleaseInput(domain_id=7, hold_seconds=DAY)
    _, calls = await run(time_skipping_env, PreviousDomainReleaseWorkflow, params, [3600, 0])
    assert calls == [("release", DAY), ("release", DAY + 3600)]


async def test_verification_backs_off_until_found(time_skipping_env):
    params = CustomDomainVerificationInput(
        domain_id=7, first_interval_seconds=30, max_interval_seconds=100, timeout_seconds=DAY
    )
    answers = ["pending", "pending", "pending", "pending", "verified"]
    result, calls = await run(time_skipping_env, CustomDomainVerificationWorkflow, params, answers)
    assert result == {"status": "verified", "lookups": 5}
    assert calls == [
        ("verify", 0),
        ("verify", 30),
        ("verify", 90),
        ("verify", 190),  # capped at max_interval_seconds
        ("verify", 290),
    ]


async def test_verification_gives_up_at_its_timeout(time_skipping_env):
    params = CustomDomainVerificationInput(
        domain_id=7, first_interval_seconds=60, max_interval_seconds=60, timeout_seconds=150
    )
    result, calls = await run(
        time_skipping_env, CustomDomainVerificationWorkflow, params, ["pending"] * 4
    )
    assert result == {"status": "expired", "lookups": 4}
    lookups = [("verify", 0), ("verify", 60), ("verify", 120), ("verify", 150)]
    assert calls == [*lookups, ("expire", 150)]


async def test_a_removed_domain_ends_its_verification(time_skipping_env):
    params = CustomDomainVerificationInput(domain_id=7)
    result, _ = await run(time_skipping_env, CustomDomainVerificationWorkflow, params, [""])
    assert result == {"status": "removed", "lookups": 1}


def test_inputs_refuse_bad_values():
    with pytest.raises(ApplicationError, match="domain_id"):
        PreviousDomainReleaseInput(domain_id=0)
    with pytest.raises(ApplicationError, match="max_interval_seconds"):
        CustomDomainVerificationInput(
            domain_id=1, first_interval_seconds=60, max_interval_seconds=5
        )
    with pytest.raises(ApplicationError, match="grace_seconds"):
        CustomDomainsRecheckInput(grace_seconds=-1)


# --- end to end ------------------------------------------------------------------------------


@pytest.fixture
def acme_with_schema(owner, queue_prefix, drop_tenant_schemas):
    tenant = TenantFactory(owner=owner, subdomain="acme", status=TenantStatus.ACTIVE)
    tenant.create_schema(check_if_exists=True)
    domain_create_primary(tenant_id=tenant.pk)
    yield tenant
    connection.set_schema_to_public()


def test_a_custom_domain_verified_on_loopback_dns_is_served_until_its_record_goes(
    acme_with_schema, temporal, dns_server, settings, client
):
    tenant = acme_with_schema
    settings.ALLOWED_HOSTS = ["*"]
    settings.CUSTOM_DOMAIN_VERIFY_INTERVAL = 1
    settings.CUSTOM_DOMAIN_GRACE = 0
    domain = custom_domain_add(tenant_id=tenant.pk, domain="shop.example.org")
    record = txt_record_name("shop.example.org")
    assert client.get("/", HTTP_HOST="shop.example.org").status_code == 404  # pending
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        wait_until(lambda: dns_server.asked(record), timeout=30, what="the first lookup")
        dns_server.set_txt(record, domain.token)
        result = run_async(
            workflow_result(temporal, custom_domain_verification_workflow_id(domain.pk))
        )
        assert result["status"] == "verified"
        served = client.get("/", HTTP_HOST="shop.example.org")
        assert served.status_code == 200
        assert served.json() == {"status": "ok"}
        assert served.wsgi_request.tenant.schema_name == tenant.schema_name

        # The record removed: the scheduled re-check warns the owner, then (no grace) stops it.
        dns_server.remove(record)
        mail.outbox.clear()

        async def recheck():
            client = await Client.connect(temporal)
            await sync_schedules(client)
            try:
                return await triggered_run_result(client, custom_domains_schedule_id())
            finally:
                for schedule_id in (custom_domains_schedule_id(), *await _ours(client)):
                    await client.get_schedule_handle(schedule_id).delete()

        assert run_async(recheck()) == {"stopped": 1}
    (warning,) = mail.outbox
    assert warning.to == [tenant.owner.email]
    assert "shop.example.org" in warning.subject
    assert Domain.objects.get(pk=domain.pk).status == CustomDomainStatus.STOPPED
    assert client.get("/", HTTP_HOST="shop.example.org").status_code == 404
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 200  # its own host


async def _ours(client) -> list[str]:
    from orchestration.schedules import project_schedules

    return [s for s in project_schedules() if s != custom_domains_schedule_id()]


def test_a_worker_restarted_mid_timer_loses_nothing_and_does_nothing_twice(
    acme_with_schema, temporal, dns_server, settings, client
):
    """A release and a verification, each waiting on its timer while no worker runs: once a
    worker is back, each does its work once."""
    tenant = acme_with_schema
    settings.TENANT_OLD_DOMAIN_TTL = 4
    settings.CUSTOM_DOMAIN_VERIFY_INTERVAL = 3
    previous = Domain.objects.get(tenant=tenant, kind="primary")
    tenant_change_subdomain(tenant_id=tenant.pk, subdomain="acme-labs")
    domain = custom_domain_add(tenant_id=tenant.pk, domain="shop.example.org")
    record = txt_record_name("shop.example.org")
    release_id = previous_domain_release_workflow_id(previous.pk)
    verify_id = custom_domain_verification_workflow_id(domain.pk)

    def waiting_on_timers() -> bool:  # started by the relay, then at their timers
        return all(
            workflow_exists(temporal, wid)
            and "EVENT_TYPE_TIMER_STARTED" in event_types(temporal, wid)
            for wid in (release_id, verify_id)
        )

    with BackgroundWorker(temporal):
        wait_until(waiting_on_timers, timeout=30, what="both runs to start their timers")
    # No worker: the timers fire, nothing runs; the record appears meanwhile.
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 308
    dns_server.set_txt(record, domain.token)
    wait_until(
        lambda: Domain.objects.get(pk=previous.pk).expires_at < timezone.now(),
        timeout=10,
        what="the hold to end",
    )
    assert Domain.objects.filter(pk=previous.pk).exists()
    assert Domain.objects.get(pk=domain.pk).status == CustomDomainStatus.PENDING
    with BackgroundWorker(temporal):
        assert run_async(workflow_result(temporal, verify_id))["status"] == "verified"
        run_async(workflow_result(temporal, release_id))
    assert not Domain.objects.filter(pk=previous.pk).exists()
    assert Domain.objects.get(pk=domain.pk).status == CustomDomainStatus.VERIFIED
    for workflow_id, activities in ((release_id, 1), (verify_id, 2)):
        events = event_types(temporal, workflow_id)
        assert events.count("EVENT_TYPE_ACTIVITY_TASK_COMPLETED") == activities, workflow_id
        assert events.count("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED") == activities, workflow_id
        assert "EVENT_TYPE_ACTIVITY_TASK_FAILED" not in events
    assert dns_server.asked(record) == 2


def test_the_recheck_schedule_runs_every_interval(settings):
    from orchestration.schedules import project_schedules

    settings.CUSTOM_DOMAIN_RECHECK_INTERVAL = 600
    settings.CUSTOM_DOMAIN_GRACE = 7200
    schedule = project_schedules()[custom_domains_schedule_id()]
    assert schedule.spec.intervals[0].every == timedelta(seconds=600)
    (params,) = schedule.action.args
    assert params == CustomDomainsRecheckInput(grace_seconds=7200)
