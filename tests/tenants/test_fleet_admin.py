"""Fleet runs in the admin: progress and failures shown, controls through the services
(each refusal a message naming the run and the reason)."""

import pytest
from django.db import transaction

from orchestration.models import OutboxEntry, OutboxKind
from tenants import fleet
from tenants.models import FleetFailure, FleetRun, FleetStatus
from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/tenants/fleetrun/"
HOST = {"HTTP_HOST": "localhost"}


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(superuser=True))
    return client


@pytest.fixture
def run() -> FleetRun:
    with transaction.atomic():
        run, _ = fleet.fleet_run_request()
    return run


def act(client, action, run):
    data = {"action": action, "_selected_action": [run.pk]}
    response = client.post(CHANGELIST, data, follow=True, **HOST)
    return [str(m) for m in response.context["messages"]]


def test_the_list_and_the_run_page_show_progress_and_failures(admin_client, run):
    tenant = TenantFactory()
    FleetRun.objects.filter(pk=run.pk).update(total=4, migrated=2, current=1)
    FleetFailure.objects.create(
        run=run,
        tenant=tenant,
        schema_name=tenant.schema_name,
        migration="workspace.0002_x",
        error="boom",
    )
    page = admin_client.get(CHANGELIST, **HOST).content.decode()
    assert all(text in page for text in [run.pk, "4 / 4 (100%)"])
    page = admin_client.get(f"{CHANGELIST}{run.pk}/change/", **HOST).content.decode()
    assert all(text in page for text in ["workspace.0002_x", "boom", run.workflow_id])


def test_pause_and_resume_signal_the_run_through_the_outbox(admin_client, run):
    assert act(admin_client, "pause", run) == [f"Fleet run {run.pk}: paused."]
    assert FleetRun.objects.get(pk=run.pk).status == FleetStatus.PAUSED
    assert act(admin_client, "resume", run) == [f"Fleet run {run.pk}: resumed."]
    signals = OutboxEntry.objects.filter(kind=OutboxKind.SIGNAL, workflow_id=run.workflow_id)
    assert list(signals.order_by("id").values_list("workflow_type", flat=True)) == [
        "pause",
        "resume",
    ]


def test_a_refused_action_says_which_run_and_why(admin_client, run):
    assert act(admin_client, "resume", run) == [f"Fleet run {run.pk} is pending: it cannot resume."]
    assert act(admin_client, "retry_failed", run) == [
        f"Fleet run {run.pk} is still pending: wait for it."
    ]
    FleetRun.objects.filter(pk=run.pk).update(status=FleetStatus.COMPLETED)
    assert act(admin_client, "retry_failed", run) == [
        f"Fleet run {run.pk} has no failed tenants to retry."
    ]
