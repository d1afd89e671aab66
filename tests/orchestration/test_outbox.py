"""Signals -> outbox -> relay -> Temporal, against the real dev server and PostgreSQL."""

import threading
import uuid

import pytest
from django.db import transaction
from temporalio.client import Client
from temporalio.worker import Worker

from config.localservices import LOCAL_DIR, TemporalDevServer, free_port
from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.outbox import workflow_type
from orchestration.routing import Workload, deployment_tenant_route
from orchestration.workflows import (
    TenantDeletionWorkflow,
    TenantProvisioningWorkflow,
)
from tenants.models import TenantStatus
from tenants.services import tenant_create, tenant_request_deletion, tenant_request_provisioning
from tests.orchestration.conftest import describe, relay_for, run_async, runs_of
from tests.orchestration.worker_extension import EchoProvisioningWorkflow

TENANT_PROVISIONING = workflow_type(TenantProvisioningWorkflow)
TENANT_DELETION = workflow_type(TenantDeletionWorkflow)


def new_tenant(owner, subdomain=None):
    return tenant_create(
        name="Acme", subdomain=subdomain or f"t{uuid.uuid4().hex[:12]}", owner=owner
    )


def test_committed_change_starts_its_workflow_on_the_routed_queue(owner, temporal, settings):
    settings.TEMPORAL_QUEUE_SHARDS = 8
    tenant = new_tenant(owner)
    tenant_request_provisioning(tenant_id=tenant.pk)

    row = OutboxEntry.objects.get()
    route = deployment_tenant_route(tenant.pk, workload=Workload.INTERACTIVE)
    assert (row.workflow_type, row.workflow_id) == (
        TENANT_PROVISIONING,
        f"tenant-provision-{tenant.pk}",
    )
    assert row.task_queue == route.task_queue
    assert row.task_queue.startswith(f"{settings.TEMPORAL_QUEUE_PREFIX}.tenant.")

    relay = relay_for(temporal)
    assert relay.relay_once() == 1
    relay.close()

    row.refresh_from_db()
    assert row.status == OutboxStatus.STARTED
    assert row.attempts == 1
    desc = describe(temporal, row.workflow_id)
    assert desc.task_queue == route.task_queue
    assert desc.workflow_type == TENANT_PROVISIONING
    assert desc.raw_info.priority.fairness_key == str(tenant.pk)
    assert desc.raw_info.priority.priority_key == Workload.INTERACTIVE
    assert desc.run_id == row.run_id


def test_rolled_back_transaction_starts_nothing(owner, temporal):
    tenant = new_tenant(owner)

    def change_then_fail():
        with transaction.atomic():
            tenant_request_deletion(tenant_id=tenant.pk)
            assert OutboxEntry.objects.count() == 1  # written inside the transaction...
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        change_then_fail()
    assert OutboxEntry.objects.count() == 0  # ...and gone with it
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PENDING
    relay = relay_for(temporal)
    assert relay.relay_once() == 0
    relay.close()
    assert runs_of(temporal, f"tenant-delete-{tenant.pk}", wait=0.5) == []


def test_enqueue_outside_a_transaction_is_refused():
    from orchestration.outbox import enqueue_start
    from orchestration.routing import deployment_system_route
    from orchestration.workflows import TokenCleanupInput, TokenCleanupWorkflow

    with pytest.raises(RuntimeError, match="inside the transaction"):
        enqueue_start(
            TokenCleanupWorkflow, TokenCleanupInput(), workflow_id="x",
            route=deployment_system_route(),
        )  # fmt: skip


def test_temporal_down_rows_wait_then_each_starts_exactly_once(owner, tmp_path):
    port = free_port()
    server = TemporalDevServer(port=port, log_file=LOCAL_DIR / "temporal-outage.log")
    tenants = [new_tenant(owner) for _ in range(5)]
    for tenant in tenants:  # "signups" while Temporal is not running at all
        tenant_request_provisioning(tenant_id=tenant.pk)
    assert OutboxEntry.objects.filter(status=OutboxStatus.PENDING).count() == 5

    relay = relay_for(server.address, poll_interval=0.2)
    relay._backoff.maximum = 0.5  # keep the test quick; production backs off to 30 s
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        threading.Event().wait(1.5)  # the relay tries and fails meanwhile
        assert OutboxEntry.objects.filter(status=OutboxStatus.PENDING).count() == 5
        server.start()
        for _ in range(100):
            if not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists():
                break
            threading.Event().wait(0.1)
    finally:
        relay.stop()
        thread.join(10)
        try:
            assert not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists()
            for tenant in tenants:
                assert len(runs_of(server.address, f"tenant-provision-{tenant.pk}")) == 1
        finally:
            server.stop()


def test_two_relays_start_each_workflow_once(owner, temporal):
    from collections import Counter
    from unittest import mock

    from orchestration.relay import OutboxRelay

    tenants = [new_tenant(owner) for _ in range(40)]
    for tenant in tenants:
        tenant_request_provisioning(tenant_id=tenant.pk)
    # Temporal's id policy would hide a doubled start; count the relays' own starts instead.
    starts, lock, real_start = Counter(), threading.Lock(), OutboxRelay._start

    def counted_start(self, client, row):
        with lock:
            starts[row.pk] += 1
        return real_start(self, client, row)

    relays = [relay_for(temporal, batch_size=5, poll_interval=0.1) for _ in range(2)]
    threads = [threading.Thread(target=relay.run) for relay in relays]
    with mock.patch.object(OutboxRelay, "_start", counted_start):
        for thread in threads:
            thread.start()
        for _ in range(200):
            if not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists():
                break
            threading.Event().wait(0.1)
        for relay in relays:
            relay.stop()
        for thread in threads:
            thread.join(10)
    rows = list(OutboxEntry.objects.all())
    assert len(rows) == 40
    assert starts == Counter({row.pk: 1 for row in rows})
    # Every row was claimed and started by exactly one relay, in one attempt.
    assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.STARTED, 1)}
    for row in rows[:10]:
        assert len(runs_of(temporal, row.workflow_id)) == 1


def test_replaying_a_row_after_its_workflow_completed_starts_no_second_run(owner, temporal):
    tenant = new_tenant(owner)
    tenant_request_provisioning(tenant_id=tenant.pk)
    row = OutboxEntry.objects.get()
    relay = relay_for(temporal)
    relay.relay_once()
    first_run_id = OutboxEntry.objects.get(pk=row.pk).run_id
    assert first_run_id

    async def complete() -> dict:
        client = await Client.connect(temporal)
        async with Worker(client, task_queue=row.task_queue, workflows=[EchoProvisioningWorkflow]):
            return await client.get_workflow_handle(row.workflow_id).result()

    assert run_async(complete()) == {
        "tenant_id": str(tenant.pk),
        "attempt": 1,
        "retry_window_seconds": 24 * 3600,
    }

    # The same row again (a relay crashed after starting but before recording it).
    OutboxEntry.objects.filter(pk=row.pk).update(status=OutboxStatus.PENDING)
    assert relay.relay_once() == 1
    relay.close()
    row.refresh_from_db()
    assert row.status == OutboxStatus.STARTED
    assert row.run_id == ""  # Temporal answered "already started": no new run id
    runs = runs_of(temporal, row.workflow_id)
    assert [run.run_id for run in runs] == [first_run_id]


def test_retry_after_failure_is_a_new_run_but_a_repeated_request_is_not(owner, temporal):
    tenant = new_tenant(owner)
    tenant_request_provisioning(tenant_id=tenant.pk)
    tenant_request_provisioning(tenant_id=tenant.pk)  # double click while pending
    from tenants.services import tenant_set_status

    tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.PROVISIONING)
    tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.FAILED, error="disk full")
    tenant_request_provisioning(tenant_id=tenant.pk)  # retry
    ids = list(OutboxEntry.objects.order_by("id").values_list("workflow_id", flat=True))
    assert ids == [
        f"tenant-provision-{tenant.pk}",
        f"tenant-provision-{tenant.pk}",
        f"tenant-provision-{tenant.pk}-attempt-2",
    ]
    relay = relay_for(temporal)
    assert relay.relay_once() == 3
    relay.close()
    assert len(runs_of(temporal, ids[0])) == 1
    assert len(runs_of(temporal, ids[2])) == 1


def test_deletion_request_is_routed_as_background_work(owner, temporal):
    tenant = new_tenant(owner)
    tenant_request_deletion(tenant_id=tenant.pk)
    row = OutboxEntry.objects.get()
    assert row.workflow_type == TENANT_DELETION
    assert row.priority_key == Workload.BACKGROUND
    assert row.fairness_key == str(tenant.pk)


def test_commit_wakes_the_relay_without_waiting_for_the_poll(owner, temporal):
    relay = relay_for(temporal, poll_interval=60)  # polling alone would take a minute
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        threading.Event().wait(0.5)  # the relay is now waiting on LISTEN
        tenant = new_tenant(owner)
        tenant_request_provisioning(tenant_id=tenant.pk)
        for _ in range(100):
            if OutboxEntry.objects.filter(status=OutboxStatus.STARTED).exists():
                break
            threading.Event().wait(0.1)
        assert OutboxEntry.objects.get().status == OutboxStatus.STARTED
    finally:
        relay.stop()
        thread.join(10)


def test_admin_retries_failed_rows_but_not_started_ones(owner, admin_client):
    from django.utils import timezone

    tenants = [new_tenant(owner) for _ in range(2)]
    for tenant in tenants:
        tenant_request_deletion(tenant_id=tenant.pk)
    failed, started = OutboxEntry.objects.order_by("id")
    OutboxEntry.objects.filter(pk=failed.pk).update(status=OutboxStatus.FAILED, last_error="x")
    OutboxEntry.objects.filter(pk=started.pk).update(
        status=OutboxStatus.STARTED, started_at=timezone.now()
    )
    response = admin_client.post(
        "/admin/orchestration/outboxentry/",
        {"action": "retry_now", "_selected_action": [failed.pk, started.pk]},
        HTTP_HOST="localhost",
        follow=True,
    )
    assert response.status_code == 200
    failed.refresh_from_db()
    started.refresh_from_db()
    assert failed.status == OutboxStatus.PENDING
    assert started.status == OutboxStatus.STARTED
    texts = [str(m) for m in response.context["messages"]]
    assert "1 row(s) will be retried by the relay." in texts
    assert "1 row(s) skipped: already started." in texts


def test_started_rows_are_pruned_after_the_retention(owner):
    from datetime import timedelta

    from django.utils import timezone

    from orchestration.outbox import prune_started

    for _ in range(3):
        tenant_request_deletion(tenant_id=new_tenant(owner).pk)
    old, recent, waiting = OutboxEntry.objects.order_by("id")
    now = timezone.now()
    OutboxEntry.objects.filter(pk=old.pk).update(
        status=OutboxStatus.STARTED, started_at=now - timedelta(days=8)
    )
    OutboxEntry.objects.filter(pk=recent.pk).update(
        status=OutboxStatus.STARTED, started_at=now - timedelta(days=6)
    )
    assert prune_started(older_than=timedelta(days=7)) == 1
    assert set(OutboxEntry.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}


def test_a_row_that_cannot_be_sent_does_not_stop_the_others(owner, temporal):
    from unittest import mock

    from django.utils import timezone

    from orchestration.relay import OutboxRelay

    bad, good = new_tenant(owner), new_tenant(owner)
    tenant_request_deletion(tenant_id=bad.pk)  # claimed first
    tenant_request_deletion(tenant_id=good.pk)
    poison_id = f"tenant-delete-{bad.pk}"
    real_start = OutboxRelay._start

    def start(self, client, row):
        if row.workflow_id == poison_id:
            raise ValueError("cannot encode these arguments")
        return real_start(self, client, row)

    relay = relay_for(temporal)
    with mock.patch.object(OutboxRelay, "_start", start):
        assert relay.relay_once() == 2
    relay.close()
    rows = {r.workflow_id: r for r in OutboxEntry.objects.all()}
    assert rows[f"tenant-delete-{good.pk}"].status == OutboxStatus.STARTED
    poison = rows[poison_id]
    assert poison.status == OutboxStatus.PENDING  # kept, retried later
    assert poison.attempts == 1
    assert poison.last_error == "ValueError: cannot encode these arguments"
    assert poison.available_at > timezone.now()


@pytest.mark.parametrize("status", ["UNAVAILABLE", "PERMISSION_DENIED", "UNAUTHENTICATED"])
def test_deployment_wide_trouble_counts_against_no_row(owner, status):
    """An outage after the relay connected, or credentials Temporal refuses: the pass stops,
    no row is failed, charged an attempt or pushed back."""
    from unittest import mock

    from temporalio.service import RPCError, RPCStatusCode

    from orchestration.relay import OutboxRelay, TemporalUnavailable

    for _ in range(3):
        tenant_request_provisioning(tenant_id=new_tenant(owner).pk)
    before = {r.pk: r.available_at for r in OutboxEntry.objects.all()}

    def refuse(self, client, row):
        raise RPCError("refused", getattr(RPCStatusCode, status), b"")

    async def connect():
        return object()

    relay = OutboxRelay(connect=connect)
    with mock.patch.object(OutboxRelay, "_start", refuse), pytest.raises(TemporalUnavailable):
        relay.relay_once()
    relay.close()
    rows = list(OutboxEntry.objects.order_by("available_at", "id"))
    assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.PENDING, 0)}
    assert {r.pk: r.available_at for r in rows} == before
    assert rows[0].last_error == "RPCError: refused"


def test_a_failing_prune_does_not_stop_the_relay(owner, temporal):
    from unittest import mock

    from django.db import OperationalError

    relay = relay_for(temporal, poll_interval=0.1, prune_interval=0.0)
    relay._backoff.maximum = 0.2
    thread = threading.Thread(target=relay.run)
    with mock.patch(
        "orchestration.relay.prune_started", side_effect=OperationalError("database went away")
    ):
        thread.start()
        try:
            threading.Event().wait(0.5)  # several passes, each failing to prune
            tenant_request_provisioning(tenant_id=new_tenant(owner).pk)
            for _ in range(100):
                if OutboxEntry.objects.filter(status=OutboxStatus.STARTED).exists():
                    break
                threading.Event().wait(0.1)
            assert thread.is_alive()
        finally:
            relay.stop()
            thread.join(10)
    assert OutboxEntry.objects.get().status == OutboxStatus.STARTED


def test_the_listen_connection_uses_all_of_djangos_connection_parameters(db, monkeypatch):
    """TLS client certificates, ``options``, an application name…: whatever the deployment
    configured for Django must reach the LISTEN connection too."""
    from django.db import connection

    from orchestration.relay import OutboxRelay

    params = connection.get_connection_params()
    monkeypatch.setattr(
        connection, "get_connection_params", lambda: {**params, "application_name": "relay-t"}
    )
    relay = OutboxRelay()
    try:
        listener = relay._get_listener()
        assert listener is not None
        assert listener.execute("SHOW application_name").fetchone()[0] == "relay-t"
    finally:
        relay.close()
