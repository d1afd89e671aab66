"""Exactly once after commit, with Temporal down at commit time; fairness between tenants."""

import logging
import threading

import pytest
from django.db import transaction
from django.tasks import TaskResultStatus
from django_tenants.utils import schema_context

from accounts.models import User
from devstack.localservices import LOCAL_DIR, TemporalDevServer, free_port
from orchestration.models import OutboxEntry, OutboxStatus
from tenants.workspace.models import Project
from tests.kit import wait_until
from tests.tasks import sample_tasks
from tests.workers import BackgroundWorker, describe, relay_for, runs_of


@pytest.mark.temporal  # starts a dev server of its own, late
def test_committed_task_runs_once_with_temporal_down_and_two_relays(
    transactional_db, settings, queue_prefix, caplog
):
    server = TemporalDevServer(port=free_port(), log_file=LOCAL_DIR / "temporal-tasks.log")
    settings.TEMPORAL_ADDRESS = server.address
    with transaction.atomic():  # a request's transaction, say; Temporal is not running
        result = sample_tasks.make_user.enqueue("once@example.com")
    relays = [relay_for(server.address, poll_interval=0.1, max_backoff=0.5) for _ in range(2)]
    threads = [threading.Thread(target=relay.run) for relay in relays]
    caplog.set_level(logging.WARNING, logger="orchestration.relay")
    for thread in threads:
        thread.start()
    try:
        wait_until(
            lambda: caplog.text.count("Temporal unreachable") >= 4,
            timeout=30,
            what="both relays to fail to reach Temporal",
        )
        assert result.task.get_result(result.id).status == TaskResultStatus.READY
        server.start()
        wait_until(
            lambda: not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists(),
            timeout=30,
            what="the row to be started",
        )
        with BackgroundWorker(server.address, kinds=("jobs",)):
            wait_until(
                lambda: result.refresh() or result.is_finished,
                timeout=60,
                what="the task to finish",
            )
    finally:
        for relay in relays:
            relay.stop()
        for thread in threads:
            thread.join(10)
    try:
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.attempts == 1
        assert User.objects.filter(email="once@example.com").count() == 1
        assert len(runs_of(server.address, result.id)) == 1
        assert OutboxEntry.objects.get(workflow_id=result.id).attempts == 1
    finally:
        server.stop()


def test_a_tenants_burst_is_admitted_a_few_runs_at_a_time(
    transactional_db, temporal, queue_prefix, active_tenant
):
    """Tenant A enqueues a backlog, then B a few tasks on the same queue. The relay keeps at
    most ``runs_per_tenant`` of A's runs open while A's backlog is larger than a burst (A's
    other rows wait in the outbox) and starts B's few at once: B's tasks finish while most
    of A's backlog still waits. Without the cap all of A's runs would be open at once, and
    B's would queue behind them in the workers."""
    from orchestration.relay.claim import BURST

    big, small = active_tenant("big"), active_tenant("small")
    with schema_context(big.schema_name):
        backlog = [sample_tasks.add_project.enqueue(f"a{i}") for i in range(40)]
    a_rows = OutboxEntry.objects.filter(fairness_key=str(big.pk))
    a_started = a_rows.filter(status=OutboxStatus.STARTED)
    most_open = 0

    def a_open() -> int:
        """While A's backlog is well over a burst, an upper bound of A's open runs: started,
        less those whose task has finished (read in that order, so that a run finishing in
        between only lowers it). 0 once the backlog is nearly a burst."""
        if a_rows.filter(status=OutboxStatus.PENDING).count() < 4 * BURST:
            return 0
        started = a_started.count()
        with schema_context(big.schema_name):
            return started - Project.objects.count()

    with BackgroundWorker(
        temporal, kinds=("tenant",), max_concurrent_activities=1, runs_per_tenant=2
    ):
        wait_until(lambda: a_started.count() >= 2, timeout=60, what="A's first runs")
        with schema_context(small.schema_name):
            few = [sample_tasks.add_project.enqueue(f"b{i}") for i in range(3)]

        def all_done() -> bool:
            nonlocal most_open
            most_open = max(most_open, a_open())
            with schema_context(small.schema_name):
                b_done = Project.objects.count()
            with schema_context(big.schema_name):
                return b_done == len(few) and Project.objects.count() == len(backlog)

        wait_until(all_done, timeout=120, interval=0.02, what="every task to finish")
        for result in few + backlog:
            wait_until(
                lambda r=result: r.refresh() or r.is_finished,
                timeout=30,
                what=f"task {result.id}'s run to close",
            )
    assert {r.status for r in few + backlog} == {TaskResultStatus.SUCCESSFUL}
    assert most_open <= 2, most_open
    last_small = max(r.finished_at for r in few)
    after = [r for r in backlog if r.finished_at > last_small]
    # First in, first out: none. With the cap, B's runs start once A's first two have.
    assert len(after) >= len(backlog) // 2, (len(after), len(backlog))
    with schema_context(small.schema_name):
        assert Project.objects.count() == 3
    assert describe(temporal, few[0].id).raw_info.priority.fairness_key == str(small.pk)


def test_the_relay_claims_each_tenants_oldest_rows_in_turn(transactional_db):
    """A backlog written by one tenant in one transaction does not put another tenant's
    rows behind all of it in the outbox either."""
    from orchestration.relay import OutboxRelay

    def row(key: str, n: int) -> OutboxEntry:
        return OutboxEntry.objects.create(
            workflow_type="W", workflow_id=f"{key}-{n}", task_queue="q", fairness_key=key
        )

    with transaction.atomic():
        for n in range(5):
            row("a", n)
    for n in range(2):
        row("b", n)
    relay = OutboxRelay(batch_size=4)
    claimed = [r.workflow_id for r in relay.claim()]
    assert claimed == ["a-0", "b-0", "a-1", "b-1"]
    other = OutboxRelay(batch_size=10)  # the rows leased to the first are not its
    assert [r.workflow_id for r in other.claim()] == ["a-2", "a-3", "a-4"]
