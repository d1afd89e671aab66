"""The admin's operations page: what it lists (from the database), its actions (the model
admins' own), who may see and use it, and its one Temporal query failing or answering."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db.models.functions import Now
from django.test import Client as DjangoClient
from django.utils import timezone
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from devstack.localservices import free_port
from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.operations import age
from orchestration.receivers import onboarding_workflow_id
from orchestration.workflows import UserOnboardingWorkflow
from tenants.models import Tenant, TenantStatus
from tests.factories import OutboxEntryFactory, TenantFactory, UserFactory
from tests.kit import run_async, wait_until

URL = "/admin/operations/"


@pytest.fixture
def client():
    """A browser on the public host ("localhost", the base domain), where the admin is."""
    return DjangoClient(HTTP_HOST="localhost")


@pytest.fixture
def no_temporal(settings):
    """Temporal "down": nothing listens at its address, and the page gives up quickly."""
    settings.TEMPORAL_ADDRESS = f"127.0.0.1:{free_port()}"
    settings.OPERATIONS_TEMPORAL_TIMEOUT = 1.0


@pytest.fixture
def root(db, client):
    user = UserFactory(email="root@example.com", superuser=True)
    client.force_login(user)
    return user


def stale(tenant, *, hours: float) -> Tenant:
    """Make the tenant's last progress ``hours`` old (update() leaves auto_now alone)."""
    Tenant.objects.filter(pk=tenant.pk).update(updated_at=Now() - timedelta(hours=hours))
    return tenant


def sections(response) -> dict:
    return {section.key: section for section in response.context["sections"]}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def post(client, action: str, pk) -> object:
    return client.post(URL, {"action": action, "pk": str(pk)}, follow=True)


def test_age_reads_as_the_two_largest_units():
    assert age(timedelta(seconds=0)) == "0 s"
    assert age(timedelta(seconds=59)) == "59 s"
    assert age(timedelta(seconds=3725)) == "1 h 2 min"
    assert age(timedelta(days=3, minutes=5)) == "3 d 5 min"
    assert age(None) == "—"


def test_lists_what_needs_attention_from_the_database(root, client, no_temporal, settings):
    settings.OPERATIONS_STUCK_AFTER = 1800
    refused = OutboxEntryFactory(status=OutboxStatus.FAILED, last_error="InvalidArgument: bad")
    retrying = OutboxEntryFactory(attempts=3, last_error="RPCError: unavailable")
    queued = OutboxEntryFactory()
    OutboxEntryFactory(status=OutboxStatus.STARTED, started_at=timezone.now())
    failed = TenantFactory(subdomain="failed", status=TenantStatus.FAILED, last_error="boom")
    stuck_deleting = stale(TenantFactory(subdomain="gone", status=TenantStatus.DELETING), hours=1)
    stuck_provisioning = stale(
        TenantFactory(subdomain="slow", status=TenantStatus.PROVISIONING, workflow_id="wf-1"),
        hours=2,
    )
    stale(TenantFactory(subdomain="fresh", status=TenantStatus.DELETING), hours=0.1)
    stale(TenantFactory(subdomain="fine", status=TenantStatus.ACTIVE), hours=5)

    response = client.get(URL)

    assert response.status_code == 200
    found = sections(response)
    outbox = found["outbox"]
    assert [r.pk for r in outbox.rows] == [refused.pk, retrying.pk, queued.pk]
    assert (outbox.count, outbox.summary) == (3, "1 failed, 2 pending")
    tenants = found["tenants"]
    # Longest without progress first; the failed one was touched just now.
    assert [r.pk for r in tenants.rows] == [stuck_provisioning.pk, stuck_deleting.pk, failed.pk]
    assert [r.action for r in tenants.rows] == ["", "requeue_deletion", "retry_provisioning"]
    assert tenants.rows[0].idle.startswith(("1 h 59 min", "2 h"))
    assert tenants.rows[0].ui_url == f"{settings.TEMPORAL_UI_URL}/namespaces/default/workflows/wf-1"
    assert tenants.summary == "1 failed, 1 provisioning, 1 deleting (stuck: no progress for 30 min)"
    page = response.content.decode()
    assert 'data-action="retry_outbox"' in page
    assert f'data-action="requeue_deletion" data-pk="{stuck_deleting.pk}"' in page
    assert f'data-action="retry_provisioning" data-pk="{failed.pk}"' in page
    assert f'data-pk="{stuck_provisioning.pk}"' not in page  # a link, no action


def test_the_page_loads_with_temporal_down_and_says_so(root, client, no_temporal):
    response = client.get(URL)

    assert response.status_code == 200
    onboarding = sections(response)["onboarding"]
    assert onboarding.count is None
    assert onboarding.unavailable.startswith("Temporal is unavailable (")
    page = response.content.decode()
    assert 'data-unavailable="onboarding"' in page
    assert "Onboarding runs that failed (unknown)" in page
    assert "Outbox rows not started (0)" in page  # the database sections are there


def test_staff_only(db, client, no_temporal):
    assert client.get(URL).url.startswith("/admin/login/")
    client.force_login(UserFactory(email="user@example.com"))
    assert client.get(URL).url.startswith("/admin/login/")
    # Staff without view permissions: the page, but none of its sections (and no query).
    client.force_login(UserFactory(email="staff@example.com", is_staff=True))
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["sections"] == []
    assert "You may see none of this page's sections" in response.content.decode()


def test_the_admin_index_links_to_it(root, client):
    assert f'href="{URL}"' in client.get("/admin/").content.decode()


def test_retry_an_outbox_row(root, client, no_temporal):
    later = timezone.now() + timedelta(hours=1)
    row = OutboxEntryFactory(status=OutboxStatus.FAILED, available_at=later, lease_owner="r1")

    response = post(client, "retry_outbox", row.pk)

    assert response.redirect_chain == [(URL, 302)]
    assert messages_of(response) == ["1 row(s) will be retried by the relay."]
    row.refresh_from_db()
    assert (row.status, row.lease_owner) == (OutboxStatus.PENDING, "")
    assert row.available_at < later


def test_retry_provisioning_and_requeue_deletion(root, client, no_temporal):
    failed = TenantFactory(name="Acme", subdomain="acme", status=TenantStatus.FAILED)
    deleting = stale(
        TenantFactory(name="Gone", subdomain="gone", status=TenantStatus.DELETING), hours=2
    )

    retried = post(client, "retry_provisioning", failed.pk)
    requeued = post(client, "requeue_deletion", deleting.pk)

    assert messages_of(retried) == ["1 queued for another provisioning attempt: Acme (acme)."]
    assert messages_of(requeued) == ["1 queued for deletion again: Gone (gone)."]
    assert Tenant.objects.get(pk=failed.pk).status == TenantStatus.PROVISIONING
    assert set(OutboxEntry.objects.values_list("workflow_id", flat=True)) == {
        f"tenant-provision-{failed.pk}-attempt-2",
        f"tenant-delete-{deleting.pk}",
    }


def test_an_action_on_a_tenant_that_moved_on_names_it_and_why(root, client, no_temporal):
    active = TenantFactory(name="Live", subdomain="live", status=TenantStatus.ACTIVE)

    response = post(client, "requeue_deletion", active.pk)

    assert messages_of(response) == [
        "Skipped Live (live): it is active; only deleting tenants can be re-queued."
    ]
    assert Tenant.objects.get(pk=active.pk).status == TenantStatus.ACTIVE
    assert not OutboxEntry.objects.exists()


def test_resend_verification(root, client, no_temporal):
    user = UserFactory(email="ada@example.com")

    response = post(client, "resend_verification", user.pk)

    assert messages_of(response) == ["Verification email queued for 1: ada@example.com."]
    assert OutboxEntry.objects.get().workflow_type == "VerificationEmailWorkflow"


def test_bad_requests_are_refused_with_the_reason(root, client, no_temporal):
    unknown = client.post(URL, {"action": "drop_everything", "pk": "1"})
    assert unknown.status_code == 400
    assert unknown.content.decode().startswith("Unknown action 'drop_everything': use one of ")
    malformed = client.post(URL, {"action": "retry_provisioning", "pk": "not-a-uuid"})
    assert malformed.status_code == 400
    assert malformed.content.decode() == "'not-a-uuid' is not the id of a tenant."
    gone = post(client, "retry_provisioning", uuid.uuid4())
    assert messages_of(gone)[0].startswith("No tenant with id ")


def test_actions_need_the_model_admins_permissions(db, client, no_temporal):
    staff = UserFactory(email="viewer@example.com", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename="view_tenant"))
    client.force_login(staff)
    failed = TenantFactory(status=TenantStatus.FAILED)

    page = client.get(URL)
    forbidden = client.post(URL, {"action": "retry_provisioning", "pk": str(failed.pk)})

    assert [s.key for s in page.context["sections"]] == ["tenants"]
    assert 'data-action="retry_provisioning"' not in page.content.decode()
    assert forbidden.status_code == 403
    assert Tenant.objects.get(pk=failed.pk).status == TenantStatus.FAILED


# --- with Temporal ---------------------------------------------------------------------------


async def fail_an_onboarding_run(address: str, user_id) -> str:
    """A real onboarding run that fails at once (its input names no token: the workflow
    refuses it for good), on a queue of its own; returns its workflow id."""
    client = await Client.connect(address)
    queue = f"ops-{uuid.uuid4().hex[:10]}"
    workflow_id = onboarding_workflow_id(user_id)
    async with Worker(client, task_queue=queue, workflows=[UserOnboardingWorkflow]):
        handle = await client.start_workflow(
            UserOnboardingWorkflow.run,
            {"user_id": str(user_id), "verification_token_id": 0},
            id=workflow_id,
            task_queue=queue,
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    return workflow_id


@pytest.mark.django_db(transaction=True)
def test_failed_onboarding_runs_come_from_temporal(temporal, client, settings):
    settings.OPERATIONS_TEMPORAL_TIMEOUT = 15  # a busy machine; the answer ends the wait
    client.force_login(UserFactory(email="root@example.com", superuser=True))
    user = UserFactory(email="new@example.com")
    workflow_id = run_async(fail_an_onboarding_run(temporal, user.pk))

    def listed():
        rows = sections(client.get(URL))["onboarding"].rows
        return next((row for row in rows if row.workflow_id == workflow_id), None)

    def page_where(check):
        # Each load asks Temporal again; a busy server may miss one answer (the page then
        # says so), which the next load recovers from.
        page = client.get(URL).content.decode()
        return page if 'data-unavailable="onboarding"' not in page and check(page) else None

    row = wait_until(listed, timeout=30, what="the failed run to be listed")
    assert (row.user_pk, row.email, row.verified) == (user.pk, "new@example.com", False)
    assert row.ui_url.endswith(f"/workflows/{workflow_id}/{row.run_id}")
    resend = f'data-action="resend_verification" data-pk="{user.pk}"'
    wait_until(lambda: page_where(lambda page: resend in page), timeout=30, what="its button")

    type(user).objects.filter(pk=user.pk).update(email_verified_at=timezone.now())
    page = wait_until(
        lambda: page_where(lambda page: "new@example.com</a> (verified since)" in page),
        timeout=30,
        what="the user shown as verified",
    )
    assert resend not in page


def test_the_current_fleet_run_with_its_failures_and_controls(root, client, no_temporal):
    from django.db import transaction

    from tenants import fleet
    from tenants.models import FleetFailure, FleetRun, FleetStatus

    assert sections(client.get(URL))["fleet"].summary == "No fleet run yet."
    with transaction.atomic():
        run, _ = fleet.fleet_run_request()
    FleetRun.objects.filter(pk=run.pk).update(status=FleetStatus.RUNNING, total=5, migrated=3)
    broken = TenantFactory()
    FleetFailure.objects.create(
        run=run,
        tenant=broken,
        schema_name=broken.schema_name,
        migration="workspace.0002_x",
        error="boom\ntrace",
    )
    response = client.get(URL)
    section = sections(response)["fleet"]
    assert (section.count, section.rows[0].done, section.rows[0].failed) == (2, 4, 1)
    page = response.content.decode()
    assert all(text in page for text in ["workspace.0002_x", "boom", 'data-action="fleet_pause"'])

    response = post(client, "fleet_pause", run.pk)
    assert messages_of(response) == [f"Fleet run {run.pk}: paused."]
    assert 'data-action="fleet_resume"' in response.content.decode()
    FleetRun.objects.filter(pk=run.pk).update(status=FleetStatus.FAILED)
    response = post(client, "fleet_retry_failed", run.pk)
    assert messages_of(response) == [f"Fleet run {run.pk}: retrying 1 failed tenant(s)."]
