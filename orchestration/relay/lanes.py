"""The relay's threads and wake-ups: ``lanes`` loops, each with its LISTEN connection.

A relay runs ``lanes`` (2) passes at once, each in a loop of its own: a row written while one
lane is busy with its pass is claimed by another at once, not after that pass. A lane is
woken by PostgreSQL ``NOTIFY`` (sent in the committing transaction), and when one of the
relay's admitted runs closes, and polls every ``poll_interval`` seconds as a safety net; the
relay's ``listening`` event is set while a lane's ``LISTEN`` is in place.
"""

import contextlib
import logging
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
from django.db import DatabaseError, close_old_connections, connection

from core import tracing
from core.db import listen
from orchestration.outbox import NOTIFY_CHANNEL
from orchestration.relay.admission import InFlight
from orchestration.relay.errors import TemporalUnavailable

logger = logging.getLogger(__package__)  # "orchestration.relay": log lines keep one logger name

# Passes under way at once: a row written (or a tenant's slot freed) while one pass starts
# its batch is claimed by the other at once instead of after it.
LANES = 2


class Backoff:
    """Exponential back-off: 0.5 s, 1 s, 2 s … up to ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0):
        self.initial, self.maximum, self.current = initial, maximum, 0.0

    def next(self) -> float:
        self.current = min(self.maximum, self.current * 2 if self.current else self.initial)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class Lane:
    """What one of a relay's loops keeps for itself: its LISTEN connection, back-offs and
    start threads."""

    def __init__(self, max_backoff: float):
        self.followers = False  # the last pass's rows had later rows for their workflows
        self.backoff = Backoff(maximum=max_backoff)
        self.listener: psycopg.Connection | None = None
        self.listen_backoff = Backoff(initial=1.0, maximum=60.0)
        self.listen_retry_at = 0.0
        self.starters: ThreadPoolExecutor | None = None  # its pass's starts, side by side


class Lanes:
    """The ``OutboxRelay``'s loops: ``run()`` blocks until ``stop()`` (from any thread)."""

    lanes: int
    batch_size: int
    poll_interval: float
    prune_interval: float
    listening: threading.Event
    _lock: threading.Lock
    _lane_of_thread: threading.local
    _lane_states: list[Lane]
    _max_backoff: float
    _stop: threading.Event
    _in_flight: InFlight | None

    @property
    def _lane(self) -> Lane:
        """The calling thread's lane (made on first use)."""
        lane = getattr(self._lane_of_thread, "lane", None)
        if lane is None:
            lane = self._lane_of_thread.lane = Lane(self._max_backoff)
            with self._lock:
                self._lane_states.append(lane)
        return lane

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Relay until ``stop()``. Blocking; run it in a thread of its own (the lanes get
        threads of their own besides). Its own statements are not traced (each poll would be
        a trace of its own); each start is, in the trace of the transaction that wrote the
        row (``start_row``). A lane that ends for any other reason than ``stop()`` stops the
        others, so that ``run()`` returns and whoever runs the relay can tell."""
        lanes = [
            threading.Thread(target=self._run_lane, args=(n,), name=f"outbox-relay-{n}")
            for n in range(1, self.lanes)
        ]
        try:
            for lane in lanes:
                lane.start()
            self._run_lane(0)
        finally:
            self._stop.set()
            for lane in lanes:
                lane.join()
            with tracing.untraced():
                self.close()

    def _run_lane(self, number: int) -> None:
        try:
            with tracing.untraced():
                self._run_loop(prunes=number == 0)
        finally:
            self._stop.set()  # one lane gone: the relay stops (see ``run``)
            self._close_listener()
            connection.close()

    def _run_loop(self, *, prunes: bool) -> None:
        lane = self._lane
        last_prune = float("-inf")
        while not self.stopping:
            close_old_connections()
            if prunes and time.monotonic() - last_prune >= self.prune_interval:
                last_prune = time.monotonic()
                self._prune()  # needs only the database: goes on while Temporal is down
            try:
                processed = self.relay_once()
            except TemporalUnavailable as exc:
                delay = lane.backoff.next()
                logger.warning("Temporal unreachable (%s); retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                continue
            except DatabaseError as exc:
                delay = lane.backoff.next()
                logger.warning("outbox database error (%s); retrying in %.1fs", exc, delay)
                connection.close()
                self._stop.wait(delay)
                continue
            except Exception:  # the relay must outlive any bug in one pass
                delay = lane.backoff.next()
                logger.exception("outbox relay pass failed; retrying in %.1fs", delay)
                self._stop.wait(delay)
                continue
            lane.backoff.reset()
            # Another pass at once after a full one, or when rows for the same workflow
            # as this pass's waited behind them (see ``claim``): those are due now.
            if processed < self.batch_size and not lane.followers:
                self._wait_for_work()

    def _wait_for_work(self) -> None:
        """Sleep until a NOTIFY arrives, one of the admitted runs closes, ``poll_interval``
        passes, or ``stop()``."""
        deadline = time.monotonic() + self.poll_interval
        in_flight = self._in_flight
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            if in_flight is not None and in_flight.drain_wakes():
                return
            listener = self.listener()
            waits = [] if in_flight is None else [in_flight.wake_fd()]
            if listener is not None:
                waits.append(listener.fileno())
            if not waits:
                self._stop.wait(min(left, 0.5))
                continue
            select.select(waits, [], [], min(left, 0.5))
            if listener is None:
                continue
            try:
                for _ in listener.notifies(timeout=0, stop_after=1):
                    return
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
                self._close_listener()

    def listener(self) -> psycopg.Connection | None:
        """The calling lane's LISTEN connection, made on first use with the same connection
        parameters as Django's (TLS client certificates, ``options``, a service file…); None
        while it cannot be made: the lane then polls, and tries again after a back-off."""
        lane = self._lane
        if lane.listener is None and time.monotonic() >= lane.listen_retry_at:
            try:
                lane.listener = listen(NOTIFY_CHANNEL)
                lane.listen_backoff.reset()
                self.listening.set()
            except psycopg.Error as exc:
                delay = lane.listen_backoff.next()
                logger.warning(
                    "cannot LISTEN for outbox rows (%s); polling, retry in %.0fs", exc, delay
                )
                lane.listen_retry_at = time.monotonic() + delay
                self._close_listener(lane)
        return lane.listener

    def _close_listener(self, lane: Lane | None = None) -> None:
        lane = lane or self._lane
        if lane.listener is not None:
            with contextlib.suppress(psycopg.Error):
                lane.listener.close()
            lane.listener = None
        if not any(other.listener is not None for other in self._lane_states):
            self.listening.clear()
