"""Signals -> outbox -> relay -> Temporal, against the real dev server and PostgreSQL.

Tests whose relay runs in a thread of its own, or that close the relay (which closes the
thread's database connection), need ``transactional_db``: the relay must see committed
rows, and a commit is what sends the NOTIFY."""

import logging
import threading

import pytest
from django.db import transaction
from temporalio.client import Client
from temporalio.worker import Worker

from devstack.localservices import LOCAL_DIR, TemporalDevServer, free_port
from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.outbox import workflow_type
from orchestration.routing import Workload, deployment_tenant_route
from orchestration.workflows import (
    TenantDeletionWorkflow,
    TenantProvisioningWorkflow,
)
from tenants.models import TenantStatus
from tenants.services import tenant_request_deletion, tenant_request_provisioning
from tests.factories import TenantFactory
from tests.kit import run_async, wait_until
from tests.orchestration.worker_extension import EchoProvisioningWorkflow
from tests.workers import describe, relay_for, runs_of, workflow_exists

TENANT_PROVISIONING = workflow_type(TenantProvisioningWorkflow)
TENANT_DELETION = workflow_type(TenantDeletionWorkflow)


def none_pending() -> bool:
    return not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists()


def some_started() -> bool:
    return OutboxEntry.objects.filter(status=OutboxStatus.STARTED).exists()


def test_committed_change_starts_its_workflow_on_the_routed_queue(
    transactional_db, owner, temporal, settings
):
    settings.TEMPORAL_QUEUE_SHARDS = 8
    tenant = TenantFactory(owner=owner)
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


def test_rolled_back_transaction_starts_nothing(transactional_db, owner, temporal):
    tenant = TenantFactory(owner=owner)

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
    assert not workflow_exists(temporal, f"tenant-delete-{tenant.pk}")


def test_enqueue_outside_a_transaction_is_refused():
    from orchestration.outbox import enqueue_start
    from orchestration.routing import deployment_system_route
    from orchestration.workflows import TokenCleanupInput, TokenCleanupWorkflow

    with pytest.raises(RuntimeError, match="inside the transaction"):
        enqueue_start(
            TokenCleanupWorkflow,
            TokenCleanupInput(),
            workflow_id="x",
            route=deployment_system_route(),
        )


@pytest.mark.temporal  # starts a dev server of its own, late
def test_temporal_down_rows_wait_then_each_starts_exactly_once(transactional_db, owner, caplog):
    port = free_port()
    server = TemporalDevServer(port=port, log_file=LOCAL_DIR / "temporal-outage.log")
    tenants = TenantFactory.create_batch(5, owner=owner)
    for tenant in tenants:  # "signups" while Temporal is not running at all
        tenant_request_provisioning(tenant_id=tenant.pk)
    assert OutboxEntry.objects.filter(status=OutboxStatus.PENDING).count() == 5

    # max_backoff keeps the test quick; production backs off to 30 s.
    relay = relay_for(server.address, poll_interval=0.2, max_backoff=0.5)
    thread = threading.Thread(target=relay.run)
    caplog.set_level(logging.WARNING, logger="orchestration.relay")
    thread.start()
    try:
        wait_until(
            lambda: caplog.text.count("Temporal unreachable") >= 3,
            timeout=30,
            what="the relay to try and fail three times",
        )
        assert OutboxEntry.objects.filter(status=OutboxStatus.PENDING).count() == 5
        server.start()
        wait_until(none_pending, timeout=10, what="every row to be started")
    finally:
        relay.stop()
        thread.join(10)
        try:
            assert none_pending()
            for tenant in tenants:
                assert len(runs_of(server.address, f"tenant-provision-{tenant.pk}")) == 1
        finally:
            server.stop()


def test_two_relays_start_each_workflow_once(transactional_db, owner, temporal):
    from collections import Counter

    for tenant in TenantFactory.create_batch(40, owner=owner):
        tenant_request_provisioning(tenant_id=tenant.pk)
    # Temporal's id policy would hide a doubled start; count the relays' own starts instead.
    starts, lock = Counter(), threading.Lock()

    def counted(start_row):
        def start(client, row):
            with lock:
                starts[row.pk] += 1
            return start_row(client, row)

        return start

    relays = [relay_for(temporal, batch_size=5, poll_interval=0.1) for _ in range(2)]
    for relay in relays:
        relay.start_row = counted(relay.start_row)
    threads = [threading.Thread(target=relay.run) for relay in relays]
    for thread in threads:
        thread.start()
    try:
        wait_until(none_pending, timeout=20, what="every row to be started")
    finally:
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


def test_replaying_a_row_after_its_workflow_completed_starts_no_second_run(
    transactional_db, owner, temporal
):
    tenant = TenantFactory(owner=owner)
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


def test_retry_after_failure_is_a_new_run_but_a_repeated_request_is_not(
    transactional_db, owner, temporal
):
    tenant = TenantFactory(owner=owner)
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
    assert relay.relay_once() == 2  # the repeated request waits for the first one's pass
    assert relay.relay_once() == 1
    relay.close()
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {OutboxStatus.STARTED}
    assert len(runs_of(temporal, ids[0])) == 1
    assert len(runs_of(temporal, ids[2])) == 1


def test_deletion_request_is_routed_as_background_work(transactional_db, owner, temporal):
    tenant = TenantFactory(owner=owner)
    tenant_request_deletion(tenant_id=tenant.pk)
    row = OutboxEntry.objects.get()
    assert row.workflow_type == TENANT_DELETION
    assert row.priority_key == Workload.BACKGROUND
    assert row.fairness_key == str(tenant.pk)


def test_commit_wakes_the_relay_without_waiting_for_the_poll(transactional_db, owner, temporal):
    relay = relay_for(temporal, poll_interval=60)  # polling alone would take a minute
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        assert relay.listening.wait(10), "the relay never listened"
        tenant = TenantFactory(owner=owner)
        tenant_request_provisioning(tenant_id=tenant.pk)
        wait_until(some_started, timeout=10, what="the row to be started")
        assert OutboxEntry.objects.get().status == OutboxStatus.STARTED
    finally:
        relay.stop()
        thread.join(10)


def test_admin_retries_failed_rows_but_not_started_ones(transactional_db, owner, admin_client):
    from django.utils import timezone

    tenants = TenantFactory.create_batch(2, owner=owner)
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


def test_started_rows_are_pruned_after_the_retention(transactional_db, owner):
    from datetime import timedelta

    from django.utils import timezone

    from orchestration.outbox import prune_started

    for tenant in TenantFactory.create_batch(3, owner=owner):
        tenant_request_deletion(tenant_id=tenant.pk)
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


ERRORS, STARTS = "tenantflow_relay_errors_total", "tenantflow_relay_start_latency_seconds_count"


def relay_metric(name: str, **labels: str) -> float:
    """A sample of this process's metrics registry, now (0 when absent)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_row_that_cannot_be_sent_does_not_stop_the_others(transactional_db, owner, temporal):
    from django.utils import timezone

    bad, good = TenantFactory.create_batch(2, owner=owner)
    tenant_request_deletion(tenant_id=bad.pk)  # claimed first
    tenant_request_deletion(tenant_id=good.pk)
    poison_id = f"tenant-delete-{bad.pk}"
    relay = relay_for(temporal)
    real_start = relay.start_row

    def start(client, row):
        if row.workflow_id == poison_id:
            raise ValueError("cannot encode these arguments")
        return real_start(client, row)

    relay.start_row = start
    errors, started = relay_metric(ERRORS, kind="row"), relay_metric(STARTS)
    assert relay.relay_once() == 2
    relay.close()
    assert relay_metric(ERRORS, kind="row") == errors + 1
    assert relay_metric(STARTS) == started + 1
    rows = {r.workflow_id: r for r in OutboxEntry.objects.all()}
    assert rows[f"tenant-delete-{good.pk}"].status == OutboxStatus.STARTED
    poison = rows[poison_id]
    assert poison.status == OutboxStatus.PENDING  # kept, retried later
    assert poison.attempts == 1
    assert poison.last_error == "ValueError: cannot encode these arguments"
    assert poison.available_at > timezone.now()


@pytest.mark.parametrize(
    "status", ["UNAVAILABLE", "RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAUTHENTICATED"]
)
def test_deployment_wide_trouble_counts_against_no_row(transactional_db, owner, status):
    """An outage after the relay connected, a server shedding load, or credentials Temporal
    refuses: the pass stops, no row is failed, charged an attempt or pushed back, and no
    lease is kept (the rows are due again at once)."""
    from temporalio.service import RPCError, RPCStatusCode

    from orchestration.relay import OutboxRelay
    from orchestration.relay.errors import TemporalUnavailable

    for tenant in TenantFactory.create_batch(3, owner=owner):
        tenant_request_provisioning(tenant_id=tenant.pk)
    before = {r.pk: r.available_at for r in OutboxEntry.objects.all()}

    def refuse(client, row):
        raise RPCError("refused", getattr(RPCStatusCode, status), b"")

    async def connect():
        return object()

    relay = OutboxRelay(connect=connect)
    relay.start_row = refuse
    errors = relay_metric(ERRORS, kind="deployment_wide")
    with pytest.raises(TemporalUnavailable):
        relay.relay_once()
    relay.close()
    assert relay_metric(ERRORS, kind="deployment_wide") == errors + 1
    rows = list(OutboxEntry.objects.order_by("available_at", "id"))
    assert {(r.status, r.attempts, r.lease_owner) for r in rows} == {(OutboxStatus.PENDING, 0, "")}
    assert {r.pk: r.available_at for r in rows} == before
    assert rows[0].last_error == "RPCError: refused"


def test_a_failing_prune_does_not_stop_the_relay(transactional_db, owner, temporal):
    from unittest import mock

    from django.db import OperationalError

    relay = relay_for(temporal, poll_interval=0.1, prune_interval=0.0, max_backoff=0.2)
    thread = threading.Thread(target=relay.run)
    with mock.patch(
        "orchestration.relay.cleanup.prune_started",
        side_effect=OperationalError("database went away"),
    ) as prune:
        thread.start()
        try:
            wait_until(lambda: prune.call_count >= 3, timeout=10, what="three failed prunes")
            tenant_request_provisioning(tenant_id=TenantFactory(owner=owner).pk)
            wait_until(some_started, timeout=10, what="the row to be started")
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
        listener = relay.listener()
        assert listener is not None
        assert relay.listening.is_set()
        assert listener.execute("SHOW application_name").fetchone()[0] == "relay-t"
    finally:
        relay.close()


def test_a_held_row_is_taken_only_once_its_hold_is_over(transactional_db, owner, temporal):
    """What a pool claim's refill request uses: written now, started a moment later."""
    from datetime import timedelta

    from django.db.models import F

    from orchestration.outbox import enqueue_start
    from orchestration.routing import deployment_system_route
    from orchestration.workflows import SchemaPoolRefillInput, SchemaPoolRefillWorkflow

    with transaction.atomic():
        row = enqueue_start(
            SchemaPoolRefillWorkflow,
            SchemaPoolRefillInput(max_builds=1),
            workflow_id="held-refill",
            route=deployment_system_route(),
            hold=timedelta(minutes=5),
        )
    relay = relay_for(temporal)
    try:
        assert relay.relay_once() == 0  # not due: nothing claimed
        OutboxEntry.objects.filter(pk=row.pk).update(
            available_at=F("available_at") - timedelta(minutes=5)
        )
        assert relay.relay_once() == 1
    finally:
        relay.close()
    row.refresh_from_db()
    assert row.status == OutboxStatus.STARTED
