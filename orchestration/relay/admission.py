"""Admission by tenant: the runs one relay keeps open per fairness key.

Temporal's fairness key orders work that *waits* on a task queue. It cannot share out what
is already running: a tenant that enqueues thousands of tasks at once would, through a
relay that starts every row as fast as it can, have thousands of runs open, saturating the
server, the workers and the database, and another tenant's one task would wait its turn
behind all of them for CPU. So the relay's claim (``OutboxRelay.claim``) admits a tenant's
backlog ``runs_per_tenant`` (``OUTBOX_RUNS_PER_TENANT``) open runs at a time; the rest of
it waits in the outbox, where the claim takes every tenant's rows in turn. A small burst
(all of a tenant's due starts, with its open runs, within ``BURST`` times that) starts at
once: the cap is for backlogs, and a tenant's ten tasks should not queue behind each other.

``InFlight`` is the count the claim reads. A start the claim takes counts at once
(``admit``); once it made a run, that run counts until it closes, or until ``window``
seconds have passed (``watch``): the cap shares out bursts, it does not hold a tenant's long
runs (a user's onboarding lasts days) against it. Each counted run is watched by a long poll
on its history (``handle.result()``) in one event loop of the relay's own; a closed run
frees its slot at once and wakes the relay (``wake_fd``). The count is one relay's (its
lanes share it): with several relays a tenant can have that many open runs through each,
and a relay that restarts starts from none. That is the intended softness: nothing is ever
held back for good.
"""

import asyncio
import contextlib
import socket
import threading
from collections import Counter

from temporalio.client import Client

from orchestration.models import OutboxEntry, OutboxKind
from orchestration.relay.claim import start_delay


class InFlight:
    """Open runs per fairness key, started by one relay. Thread-safe."""

    def __init__(self, *, window: float = 60.0):
        if window <= 0:
            raise ValueError("window must be positive.")
        self.window = window
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # A closed run writes a byte here: the relay, waiting for NOTIFY, selects on it too.
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)

    # --- what the claim reads ----------------------------------------------------------
    def open_runs(self) -> dict[str, int]:
        """``{fairness key: its open runs}``, for every key with any."""
        with self._lock:
            return {key: n for key, n in self._counts.items() if n}

    # --- counting ----------------------------------------------------------------------
    def admit(self, key: str) -> None:
        """Take one of ``key``'s slots for a start about to be made: it is then either
        ``watch``ed, or given back with ``release``."""
        with self._lock:
            self._counts[key] += 1

    def watch(self, client: Client, key: str, workflow_id: str, run_id: str) -> None:
        """Keep the slot ``admit`` took for the run just started until it closes (or the
        window passes)."""
        try:
            asyncio.run_coroutine_threadsafe(
                self._until_closed(client, key, workflow_id, run_id), self._running_loop()
            )
        except RuntimeError:  # closing: nothing to wait for any more
            self.release(key)

    async def _until_closed(self, client: Client, key: str, workflow_id: str, run_id: str):
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            # Failed, cancelled, timed out, continued as new, the window passed, Temporal
            # unreachable: in every case the run no longer counts.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(handle.result(follow_runs=False), self.window)
        finally:
            self.release(key)

    def release(self, key: str) -> None:
        """Give back one of ``key``'s slots, and wake the relay."""
        with self._lock:
            self._counts[key] -= 1
            if self._counts[key] <= 0:
                del self._counts[key]
        with contextlib.suppress(OSError):  # the buffer is full: the relay is awake anyway
            self._wake_write.send(b"\0")

    # --- the relay's wake-up -----------------------------------------------------------
    def wake_fd(self) -> int:
        return self._wake_read.fileno()

    def drain_wakes(self) -> bool:
        """Whether a run closed since the last call."""
        woken = False
        with contextlib.suppress(BlockingIOError):
            while self._wake_read.recv(4096):
                woken = True
        return woken

    # --- the watchers' loop ------------------------------------------------------------
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="outbox-in-flight", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        """Stop watching (the counts are dropped) and close the loop and the wake socket."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None:

            async def cancel_watches():
                watches = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for watch in watches:
                    watch.cancel()
                await asyncio.gather(*watches, return_exceptions=True)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel_watches(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(5)
            loop.close()
        with self._lock:
            self._counts.clear()
        self._wake_read.close()
        self._wake_write.close()


class Admitting:
    """The ``OutboxRelay``'s side of admission: which rows count against their tenant, and
    the slots a pass takes and gives back. ``_in_flight`` is made on the first claim when
    ``runs_per_tenant`` is set; ``_lock`` guards it with ``_under_way``."""

    runs_per_tenant: int
    in_flight_window: float
    _lock: threading.Lock
    _under_way: set[int]
    _in_flight: InFlight | None

    def _open_runs(self) -> dict[str, int]:
        """``{fairness key: its open runs}`` for the claim; called with ``_lock`` held."""
        if self.runs_per_tenant and self._in_flight is None:
            self._in_flight = InFlight(window=self.in_flight_window)
        return self._in_flight.open_runs() if self._in_flight is not None else {}

    def _admit(self, rows: list[OutboxEntry]) -> None:
        """The claimed ``rows`` that count take their slots at once; called with ``_lock``
        held."""
        for row in rows:
            if self._counted(row):
                self._in_flight.admit(row.fairness_key)

    def _counted(self, row: OutboxEntry) -> bool:
        """Whether ``row`` takes one of its tenant's slots (``runs_per_tenant``): a start
        with a key, not delayed (what the claim calls ``counted``)."""
        return bool(
            self._in_flight is not None
            and row.kind == OutboxKind.START
            and row.fairness_key
            and not start_delay(row)
        )

    def _watch(self, client: Client, started: list[tuple[OutboxEntry, str]]) -> set[int]:
        """Keep the slots of the counted rows that made a run (not one that was running
        already) until the run closes; returns those rows' pks."""
        watched = set()
        for row, run_id in started:
            if run_id and self._counted(row):
                self._in_flight.watch(client, row.fairness_key, row.workflow_id, run_id)
                watched.add(row.pk)
        return watched

    def _settle(self, rows: list[OutboxEntry], watched: set[int]) -> None:
        """The end of a pass: the slots its counted rows took but no run keeps are free
        again, and its rows (recorded, released or left leased) may be claimed again."""
        with self._lock:
            for row in rows:
                if row.pk not in watched and self._counted(row):
                    self._in_flight.release(row.fairness_key)
            self._under_way.difference_update(row.pk for row in rows)
