"""The relay's admission by tenant (``orchestration.admission``): counts and wake-ups,
without Temporal (a stand-in client whose runs close when told), and the claim that reads
them."""

import asyncio
import select
import threading

import pytest
from django.db import transaction

from orchestration.admission import InFlight
from orchestration.models import OutboxEntry, OutboxKind
from orchestration.relay import OutboxRelay
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
    counted = InFlight(2, window=30)
    yield counted
    counted.close()


def test_runs_count_against_their_tenant_until_they_close(in_flight):
    runs = Runs()
    for n in range(3):
        in_flight.watch(runs, "a", f"a-{n}", f"run-a-{n}")
    in_flight.watch(runs, "b", "b-0", "run-b-0")
    assert in_flight.slots_left() == {"a": 0, "b": 1}
    assert not in_flight.drain_wakes()
    runs.close("run-a-0")
    runs.close("run-b-0", failed=True)  # a failed run is closed too
    wait_until(lambda: in_flight.slots_left() == {"a": 0}, timeout=5, what="two runs to close")
    # The relay, waiting for work, is woken by a closed run.
    readable, _, _ = select.select([in_flight.wake_fd()], [], [], 1)
    assert readable
    assert in_flight.drain_wakes()
    assert not in_flight.drain_wakes()
    runs.close("run-a-1")
    runs.close("run-a-2")
    wait_until(lambda: in_flight.slots_left() == {}, timeout=5, what="every run to close")


def test_a_run_stops_counting_once_the_window_passes():
    in_flight = InFlight(1, window=0.2)
    try:
        in_flight.watch(Runs(), "a", "a-0", "never-closes")
        assert in_flight.slots_left() == {"a": 0}
        wait_until(lambda: in_flight.slots_left() == {}, timeout=5, what="the window to pass")
    finally:
        in_flight.close()


def test_closing_drops_the_watches():
    in_flight = InFlight(1)
    in_flight.watch(Runs(), "a", "a-0", "open")
    in_flight.close()
    assert in_flight.slots_left() == {}


@pytest.mark.parametrize(("limit", "window", "message"), [(0, 1.0, "limit"), (1, 0.0, "window")])
def test_nonsense_settings_are_refused(limit, window, message):
    with pytest.raises(ValueError, match=message):
        InFlight(limit, window=window)


def test_the_claim_holds_back_a_tenants_starts_past_its_open_runs(transactional_db):
    """A tenant with every slot taken gets no start in the claim; its signals, rows with no
    tenant, and other tenants' rows are claimed as before."""

    def row(key: str, n: int, kind=OutboxKind.START) -> None:
        OutboxEntry.objects.create(
            workflow_type="W", workflow_id=f"{key or 'none'}-{n}", task_queue="q",
            fairness_key=key, kind=kind,
        )  # fmt: skip

    with transaction.atomic():
        for n in range(4):
            row("a", n)
        row("a", 9, kind=OutboxKind.SIGNAL)
        row("b", 0)
        row("", 0)
    relay = OutboxRelay(batch_size=20, runs_per_tenant=2)
    relay._in_flight = InFlight(2)
    try:
        relay._in_flight.watch(Runs(), "a", "a-open", "run-a-open")  # one of two slots taken
        claimed = sorted(r.workflow_id for r in relay.claim())
        assert claimed == ["a-0", "a-9", "b-0", "none-0"]
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
