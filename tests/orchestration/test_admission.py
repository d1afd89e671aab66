"""The relay's admission by tenant (``orchestration.relay.admission``): counts and wake-ups,
without Temporal (a stand-in client whose runs close when told), and the claim that reads
them."""

import asyncio
import select
import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from orchestration.models import OutboxEntry, OutboxKind
from orchestration.relay import OutboxRelay
from orchestration.relay.admission import InFlight
from tests.kit import wait_until


class Runs:
    """A stand-in client: ``handle.result()`` of a run waits until ``close(run_id)``, which
    makes it return, or ``fail(run_id)``, which makes it raise."""

    def __init__(self):
        self.outcomes: dict[str, threading.Event] = {}
        self.failed: set[str] = set()

    def get_workflow_handle(self, workflow_id, *, run_id):
        runs = self

        class Handle:
            async def result(self, follow_runs=True):
                event = runs.outcomes.setdefault(run_id, threading.Event())
                while not event.is_set():  # noqa: ASYNC110 - set from another thread
                    await asyncio.sleep(0.01)
                if run_id in runs.failed:
                    raise RuntimeError(f"{workflow_id} failed")
                return {}

        return Handle()

    def close(self, run_id, *, failed=False):
        if failed:
            self.failed.add(run_id)
        self.outcomes.setdefault(run_id, threading.Event()).set()


@pytest.fixture
def in_flight():
    counted = InFlight(window=30)
    yield counted
    counted.close()


def test_runs_count_against_their_tenant_until_they_close(in_flight):
    runs = Runs()
    for key, n in [("a", 0), ("a", 1), ("a", 2), ("b", 0)]:
        in_flight.admit(key)
        in_flight.watch(runs, key, f"{key}-{n}", f"run-{key}-{n}")
    assert in_flight.open_runs() == {"a": 3, "b": 1}
    assert not in_flight.drain_wakes()
    runs.close("run-a-0")
    runs.close("run-b-0", failed=True)  # a failed run is closed too
    wait_until(lambda: in_flight.open_runs() == {"a": 2}, timeout=5, what="two runs to close")
    # The relay, waiting for work, is woken by a closed run.
    readable, _, _ = select.select([in_flight.wake_fd()], [], [], 1)
    assert readable
    assert in_flight.drain_wakes()
    assert not in_flight.drain_wakes()
    runs.close("run-a-1")
    runs.close("run-a-2")
    wait_until(lambda: in_flight.open_runs() == {}, timeout=5, what="every run to close")


def test_a_run_stops_counting_once_the_window_passes():
    in_flight = InFlight(window=0.2)
    try:
        in_flight.admit("a")
        in_flight.watch(Runs(), "a", "a-0", "never-closes")
        assert in_flight.open_runs() == {"a": 1}
        wait_until(lambda: in_flight.open_runs() == {}, timeout=5, what="the window to pass")
    finally:
        in_flight.close()


def test_closing_drops_the_watches():
    in_flight = InFlight()
    in_flight.admit("a")
    in_flight.watch(Runs(), "a", "a-0", "open")
    in_flight.close()
    assert in_flight.open_runs() == {}


def test_a_window_must_be_positive():
    with pytest.raises(ValueError, match="window"):
        InFlight(window=0)


def test_the_claim_holds_back_a_tenants_backlog_past_its_open_runs(transactional_db):
    """A tenant whose backlog is larger than a burst gets starts in the claim only up to
    its slots; its signals and delayed starts, rows with no tenant, and another tenant's
    burst (more than its slots, less than a burst) are claimed whole."""

    def row(key: str, n: int, kind=OutboxKind.START) -> None:
        OutboxEntry.objects.create(
            workflow_type="W",
            workflow_id=f"{key or 'none'}-{n}",
            task_queue="q",
            fairness_key=key,
            kind=kind,
        )

    with transaction.atomic():
        for n in range(8):
            row("a", n)
        row("a", 9, kind=OutboxKind.SIGNAL)
        OutboxEntry.objects.create(
            workflow_type="W",
            workflow_id="a-later",
            task_queue="q",
            fairness_key="a",
            run_after=timezone.now() + timedelta(hours=1),
        )
        for n in range(3):
            row("b", n)
        row("", 0)
    relay = OutboxRelay(batch_size=20, runs_per_tenant=2)
    relay._in_flight = InFlight()
    try:
        relay._in_flight.admit("a")  # one of two slots taken
        relay._in_flight.watch(Runs(), "a", "a-open", "run-a-open")
        # a: 1 open + 8 due > 2 x BURST (4): one more start. b: 3 due <= 8: all of them.
        claimed = sorted(r.workflow_id for r in relay.claim())
        assert claimed == ["a-0", "a-9", "a-later", "b-0", "b-1", "b-2", "none-0"]
    finally:
        relay.close()


def test_no_cap_claims_every_start(transactional_db):
    with transaction.atomic():
        for n in range(5):
            OutboxEntry.objects.create(
                workflow_type="W", workflow_id=f"a-{n}", task_queue="q", fairness_key="a"
            )
    relay = OutboxRelay(batch_size=20, runs_per_tenant=0)
    try:
        assert len(relay.claim()) == 5
    finally:
        relay.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs-per-tenant", "-1"], "--runs-per-tenant must be 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_bad_relay_options_are_command_errors(args, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("run_outbox_relay", *args)


def test_a_lane_does_not_claim_the_rows_or_slots_of_a_pass_under_way(transactional_db):
    """Two passes of one relay at once: the second claims neither the first one's rows
    (leased to the same relay) nor the tenant slots they took; once the first pass is
    settled without making runs, both are free again."""
    with transaction.atomic():
        for n in range(9):  # more than a burst (2 x BURST)
            OutboxEntry.objects.create(
                workflow_type="W", workflow_id=f"a-{n}", task_queue="q", fairness_key="a"
            )
        OutboxEntry.objects.create(workflow_type="W", workflow_id="none-0", task_queue="q")
    relay = OutboxRelay(batch_size=20, runs_per_tenant=2)
    try:
        first = relay.claim()
        assert sorted(r.workflow_id for r in first) == ["a-0", "a-1", "none-0"]
        assert relay.claim() == []  # a's two slots are taken, the rest is under way
        relay._settle(first, watched=set())  # no run came of them (say, a lost lease)
        again = relay.claim()
        assert sorted(r.workflow_id for r in again) == ["a-0", "a-1", "none-0"]
    finally:
        relay.close()
