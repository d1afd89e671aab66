"""The relay's leases, against the real PostgreSQL and Temporal dev server: no transaction
is held open across a call to Temporal, a dead relay's rows go to another relay, an admin's
retry never waits on a relay, errors are charged to whom they concern, and every time
compared is the database's.

The relays run in threads or close their connection: ``transactional_db`` throughout."""

import logging
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone
from temporalio.service import RPCError, RPCStatusCode

from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.relay.errors import TemporalUnavailable
from tenants.services import tenant_request_provisioning
from tests.factories import TenantFactory
from tests.kit import wait_until
from tests.workers import relay_for, runs_of, runs_on_queue


def none_pending() -> bool:
    return not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists()


def wait_until_none_pending(*, timeout: float) -> None:
    wait_until(none_pending, timeout=timeout, what="every row to be started")


def database_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def request_provisioning(owner, count: int) -> list[OutboxEntry]:
    for tenant in TenantFactory.create_batch(count, owner=owner):
        tenant_request_provisioning(tenant_id=tenant.pk)
    return list(OutboxEntry.objects.order_by("id"))


def run_in_thread(relay) -> threading.Thread:
    thread = threading.Thread(target=relay.run)
    thread.start()
    return thread


def stop(relay, thread: threading.Thread) -> None:
    relay.stop()
    thread.join(30)
    assert not thread.is_alive(), "the relay did not stop"


@pytest.fixture
def idle_in_transaction_timeout(transactional_db):
    """``idle_in_transaction_session_timeout = 500ms`` for every new connection to the test
    database, as managed PostgreSQL services often set it; the pool is emptied so that
    every connection from here on (the relay's too) is a new one."""
    name = connection.settings_dict["NAME"]

    def set_and_reconnect(clause: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" {clause}')
        connection.close()
        connection.close_pool()

    set_and_reconnect("SET idle_in_transaction_session_timeout = '500ms'")
    try:
        yield "500ms"
    finally:
        set_and_reconnect("RESET idle_in_transaction_session_timeout")


def test_idle_in_transaction_timeout_every_row_started_exactly_once(
    idle_in_transaction_timeout, owner, temporal, queue_prefix
):
    """The relay used to hold its claim's transaction open while it called Temporal: a start
    slower than the server's idle-in-transaction timeout got the session killed, the batch's
    records were rolled back, and the next pass started the same rows again (and again: a
    livelock once starts are slow). This test failed on that relay: rows started two and
    three times. Leases keep no transaction open across a call to Temporal."""
    rows = request_provisioning(owner, 200)
    # One start in forty is slower than the timeout, the first time: Temporal under load.
    slow = {row.pk for row in rows[39::40]}
    starts, lock, seen_settings = Counter(), threading.Lock(), []
    relay = relay_for(temporal, poll_interval=0.2, max_backoff=0.5)
    real_start = relay.start_row

    def start(client, row):  # called from several threads at once
        with lock:
            if not seen_settings:  # what the relay's own connections run under
                with connection.cursor() as cursor:
                    cursor.execute("SHOW idle_in_transaction_session_timeout")
                    seen_settings.append(cursor.fetchone()[0])
            starts[row.pk] += 1
            first = starts[row.pk] == 1
        if first and row.pk in slow:
            time.sleep(0.7)  # a slow answer from Temporal, longer than the timeout
        return real_start(client, row)

    relay.start_row = start
    thread = run_in_thread(relay)
    try:
        wait_until_none_pending(timeout=90)
    finally:
        stop(relay, thread)

    assert seen_settings == [idle_in_transaction_timeout]
    assert starts == Counter({row.pk: 1 for row in rows})
    stored = list(OutboxEntry.objects.all())
    assert {(r.status, r.attempts, r.lease_owner) for r in stored} == {
        (OutboxStatus.STARTED, 1, "")
    }
    runs = runs_on_queue(temporal, rows[0].task_queue, count=200)
    assert Counter(run.id for run in runs) == Counter({row.workflow_id: 1 for row in rows})


def test_a_dead_relays_leases_expire_and_another_relay_starts_its_rows(
    transactional_db, owner, temporal, monkeypatch
):
    rows = request_provisioning(owner, 3)
    dead = relay_for(temporal, lease=1.5, start_timeout=0.5)

    def die(client, row):
        raise SystemExit("the relay's process is killed mid-batch")

    dead.start_row = die
    with pytest.raises(SystemExit):
        dead.relay_once()
    leased = list(OutboxEntry.objects.all())
    assert {(r.status, r.lease_owner) for r in leased} == {(OutboxStatus.PENDING, dead.relay_id)}
    assert all(r.lease_expires_at > database_now() for r in leased)

    heir = relay_for(temporal)
    real_now = timezone.now
    # A live lease is left alone, even by a relay whose clock runs two hours ahead.
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(hours=2))
    assert heir.relay_once() == 0
    monkeypatch.undo()

    # All three were leased in one statement, so they expire together.
    assert wait_until(heir.relay_once, timeout=15, what="the dead relay's leases to expire") == 3
    assert none_pending()
    heir.close()
    dead.close()
    stored = list(OutboxEntry.objects.all())
    assert {(r.status, r.attempts, r.lease_owner) for r in stored} == {
        (OutboxStatus.STARTED, 1, "")
    }
    for row in rows:
        assert len(runs_of(temporal, row.workflow_id)) == 1


def test_admin_retry_of_a_row_a_relay_is_starting_does_not_wait(
    transactional_db, owner, temporal, admin_client
):
    (row,) = request_provisioning(owner, 1)
    relay = relay_for(temporal, poll_interval=0.2)
    real_start = relay.start_row
    in_start, go_on = threading.Event(), threading.Event()

    def held(client, row):
        if not in_start.is_set():  # the first start hangs until the test lets it go on
            in_start.set()
            assert go_on.wait(30)
        return real_start(client, row)

    relay.start_row = held
    thread = run_in_thread(relay)
    try:
        assert in_start.wait(10), "the relay never started the row"
        assert OutboxEntry.objects.get().lease_owner == relay.relay_id
        # The relay used to hold the row locked here: the admin's UPDATE would have waited
        # for the whole batch. lock_timeout turns such a wait into an error.
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            response = admin_client.post(
                "/admin/orchestration/outboxentry/",
                {"action": "retry_now", "_selected_action": [row.pk]},
                HTTP_HOST="localhost",
                follow=True,
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        assert response.status_code == 200
        assert "1 row(s) will be retried by the relay." in [
            str(m) for m in response.context["messages"]
        ]
        retried = OutboxEntry.objects.get()
        assert (retried.status, retried.lease_owner, retried.lease_expires_at) == (
            OutboxStatus.PENDING,
            "",
            None,
        )
        assert retried.available_at <= database_now()
        go_on.set()
        wait_until_none_pending(timeout=15)
    finally:
        go_on.set()
        stop(relay, thread)
    # Started by the held start and again after the retry: still one run.
    assert len(runs_of(temporal, row.workflow_id)) == 1


# What a start under way ends in: the row started, its own failure (retried, or refused for
# good), or deployment-wide trouble (the row released).
OUTCOMES = {
    "started": None,
    "row_failure": ValueError("cannot encode these arguments"),
    "refused": RPCError("bad input", RPCStatusCode.INVALID_ARGUMENT, b""),
    "released": RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""),
}


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_a_relay_records_nothing_over_the_lease_another_relay_took_mid_start(
    transactional_db, owner, temporal, outcome
):
    """While a start is under way its row's lease expires and another relay claims the row.
    Whatever the start ends in, the first relay writes nothing to the row: it is the other
    relay's, as that relay's claim left it."""
    (row,) = request_provisioning(owner, 1)
    relay, other = relay_for(temporal), relay_for(temporal)
    real_start, taken = relay.start_row, {}

    def start(client, row):
        OutboxEntry.objects.filter(pk=row.pk).update(lease_expires_at=Now())
        (claimed,) = other.claim()  # the lease has expired: the other relay takes the row
        taken.update(OutboxEntry.objects.filter(pk=claimed.pk).values().get())
        if OUTCOMES[outcome] is not None:
            raise OUTCOMES[outcome]
        return real_start(client, row)

    relay.start_row = start
    try:
        if outcome == "released":
            with pytest.raises(TemporalUnavailable):
                relay.relay_once()
        else:
            assert relay.relay_once() == 1
        assert taken["lease_owner"] == other.relay_id
        assert OutboxEntry.objects.filter(pk=row.pk).values().get() == taken
    finally:
        relay.close()
        other.close()


@pytest.mark.parametrize(
    "timeout",
    [TimeoutError(), RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")],
    ids=["asyncio", "DEADLINE_EXCEEDED"],
)
def test_a_row_whose_start_always_times_out_does_not_hold_up_the_others(
    transactional_db, owner, temporal, timeout
):
    stuck, *others = request_provisioning(owner, 4)
    relay = relay_for(temporal)
    real_start = relay.start_row

    def start(client, row):
        if row.pk == stuck.pk:
            raise timeout
        return real_start(client, row)

    relay.start_row = start
    try:
        assert relay.relay_once() == 4  # the stuck row first, then the rest of the batch
        stuck.refresh_from_db()
        assert (stuck.status, stuck.attempts, stuck.lease_owner) == (OutboxStatus.PENDING, 1, "")
        assert stuck.last_error.startswith(type(timeout).__name__)
        assert stuck.available_at > database_now()  # charged: retried after a delay
        assert not OutboxEntry.objects.filter(
            pk__in=[r.pk for r in others], status=OutboxStatus.PENDING
        ).exists()

        # Due again, and ahead of new rows: a later pass is not held up either.
        OutboxEntry.objects.filter(pk=stuck.pk).update(available_at=Now() - timedelta(minutes=1))
        later = request_provisioning(owner, 3)[-3:]
        assert relay.relay_once() == 4
    finally:
        relay.close()
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == (OutboxStatus.PENDING, 2)
    assert set(
        OutboxEntry.objects.filter(pk__in=[r.pk for r in later]).values_list("status", flat=True)
    ) == {OutboxStatus.STARTED}


def test_resource_exhausted_charges_no_row_and_backs_off(transactional_db, owner, temporal, caplog):
    rows = request_provisioning(owner, 3)
    # One start at a time, so that each pass meets exactly one refusal.
    relay = relay_for(temporal, poll_interval=0.2, max_backoff=0.2, start_concurrency=1)
    real_start, refusals = relay.start_row, []

    def start(client, row):
        if len(refusals) < 3:  # the server sheds load for a while
            refusals.append(row.pk)
            raise RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
        return real_start(client, row)

    relay.start_row = start
    caplog.set_level(logging.WARNING, logger="orchestration.relay")
    thread = run_in_thread(relay)
    try:
        wait_until_none_pending(timeout=15)
    finally:
        stop(relay, thread)
    assert refusals == [rows[0].pk] * 3  # each pass stopped at the first refusal
    assert caplog.text.count("Temporal unreachable") == 3  # and the relay backed off
    stored = list(OutboxEntry.objects.all())
    assert {(r.status, r.attempts, r.lease_owner) for r in stored} == {
        (OutboxStatus.STARTED, 1, "")
    }


def test_due_times_are_the_databases_clock_not_the_writers(
    transactional_db, owner, temporal, monkeypatch
):
    tenant = TenantFactory(owner=owner)
    real_now = timezone.now
    # Written by a machine whose clock runs an hour ahead of the relay's.
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(hours=1))
    tenant_request_provisioning(tenant_id=tenant.pk)
    monkeypatch.undo()

    row = OutboxEntry.objects.get()
    assert row.available_at <= database_now()
    relay = relay_for(temporal)
    try:
        assert relay.relay_once() == 1  # the writer's clock used to make it wait an hour
    finally:
        relay.close()
    row.refresh_from_db()
    assert row.status == OutboxStatus.STARTED


def test_a_pass_starts_its_rows_concurrently(transactional_db, owner, temporal):
    """Twenty rows whose starts each take 0.3 s: one pass starts them side by side (at most
    ``start_concurrency`` at once), not one after another."""
    rows = request_provisioning(owner, 20)
    relay = relay_for(temporal, start_concurrency=8)
    real_start, lock, running, most = relay.start_row, threading.Lock(), [0], [0]

    def slow(client, row):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)
            return real_start(client, row)
        finally:
            with lock:
                running[0] -= 1

    relay.start_row = slow
    try:
        assert relay.relay_once() == 20
    finally:
        relay.close()
    assert most[0] == 8
    assert none_pending()
    for row in rows:
        assert len(runs_of(temporal, row.workflow_id)) == 1


def test_deployment_wide_trouble_mid_pass_records_what_started_and_releases_the_rest(
    transactional_db, owner, temporal
):
    """Temporal goes away while a concurrent pass is under way: the rows it started are
    recorded as started, the others are released uncharged and due at once."""
    request_provisioning(owner, 12)
    relay = relay_for(temporal, start_concurrency=4)
    real_start, lock, calls = relay.start_row, threading.Lock(), [0]

    def outage(client, row):
        with lock:
            calls[0] += 1
            nth = calls[0]
        if nth > 4:
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
        return real_start(client, row)

    relay.start_row = outage
    try:
        with pytest.raises(TemporalUnavailable):
            relay.relay_once()
    finally:
        relay.close()
    stored = {r.pk: r for r in OutboxEntry.objects.all()}
    started = [r for r in stored.values() if r.status == OutboxStatus.STARTED]
    waiting = [r for r in stored.values() if r.status == OutboxStatus.PENDING]
    assert len(started) == 4
    assert len(waiting) == 8
    assert {(r.attempts, r.lease_owner) for r in started} == {(1, "")}
    assert {(r.attempts, r.lease_owner, r.lease_expires_at) for r in waiting} == {(0, "", None)}
    assert all(r.available_at <= database_now() for r in waiting)


def test_rows_of_one_workflow_go_in_order_and_a_failed_start_holds_back_its_signal(
    transactional_db, owner, temporal
):
    """A start and then a signal for the same workflow: the signal goes in a pass after the
    start's, never beside it. When the start fails and waits for its retry, the signal
    waits too (sent first, it would find no run and fail for good)."""
    from orchestration.outbox import enqueue_signal

    tenant = TenantFactory(owner=owner)
    tenant_request_provisioning(tenant_id=tenant.pk)
    start_row = OutboxEntry.objects.get()
    with transaction.atomic():
        enqueue_signal(workflow_id=start_row.workflow_id, signal="no_such_signal")
    request_provisioning(owner, 6)  # others in the same passes
    relay = relay_for(temporal, start_concurrency=4)
    real_start, order, fail_once = relay.start_row, [], [True]

    def start(client, row):
        if row.workflow_id == start_row.workflow_id:
            order.append(row.kind)
            if fail_once[0]:
                fail_once[0] = False
                raise ValueError("cannot encode these arguments")
        return real_start(client, row)

    relay.start_row = start
    try:
        assert relay.relay_once() == 7  # the start and the six others, not the signal
        assert relay.relay_once() == 0  # the start waits for its retry; the signal for it
        assert order == ["start"]
        signal = OutboxEntry.objects.get(kind="signal")
        assert (signal.status, signal.attempts, signal.lease_owner) == (OutboxStatus.PENDING, 0, "")
        OutboxEntry.objects.filter(pk=start_row.pk).update(available_at=Now())
        assert relay.relay_once() == 1  # the start
        assert relay.relay_once() == 1  # then its signal
    finally:
        relay.close()
    assert order == ["start", "start", "signal"]
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {OutboxStatus.STARTED}


def test_a_row_held_back_behind_its_workflows_start_goes_right_after_it(
    transactional_db, owner, temporal
):
    """A start and its signal written together: the relay sends the signal in the pass
    after the start's, at once, not at its next poll (30 s here)."""
    from orchestration.outbox import enqueue_signal

    tenant = TenantFactory(owner=owner)
    with transaction.atomic():
        tenant_request_provisioning(tenant_id=tenant.pk)
        start_row = OutboxEntry.objects.get()
        enqueue_signal(workflow_id=start_row.workflow_id, signal="no_such_signal")
    relay = relay_for(temporal, poll_interval=30)
    thread = run_in_thread(relay)
    try:
        wait_until_none_pending(timeout=10)
    finally:
        stop(relay, thread)
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {OutboxStatus.STARTED}


def test_a_row_written_while_a_start_hangs_is_started_by_the_other_lane(
    transactional_db, owner, temporal
):
    """One start hangs (a slow or overloaded Temporal answers it late): its pass waits for
    it, up to the start timeout. A row written meanwhile is started by the relay's other
    lane, not after the hanging pass."""
    first = request_provisioning(owner, 1)[0]
    relay = relay_for(temporal, poll_interval=0.2, lanes=2)
    real_start, hanging, released = relay.start_row, threading.Event(), threading.Event()

    def start(client, row):
        if row.pk == first.pk:
            hanging.set()
            released.wait(30)
        return real_start(client, row)

    relay.start_row = start
    thread = run_in_thread(relay)
    try:
        assert hanging.wait(30), "the first start never began"
        second = request_provisioning(owner, 1)[-1]
        wait_until(
            lambda: OutboxEntry.objects.get(pk=second.pk).status == OutboxStatus.STARTED,
            timeout=30,
            what="the second row to be started while the first start hangs",
        )
        assert OutboxEntry.objects.get(pk=first.pk).status == OutboxStatus.PENDING
    finally:
        released.set()
        stop(relay, thread)
    assert none_pending()
    assert len(runs_of(temporal, second.workflow_id)) == 1
