"""The outbox relay: starts recorded workflows on Temporal, each exactly once.

Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, so any number of relays can run
side by side without starting a row twice; the claim's transaction stays open while the
batch is started, and a relay that dies mid-batch leaves its rows pending for another.
Starts use deterministic workflow ids with ``REJECT_DUPLICATE`` (or, where a retry after
failure is wanted, ``ALLOW_DUPLICATE_FAILED_ONLY``) and ``USE_EXISTING``, and
``WorkflowAlreadyStartedError`` counts as started: replaying a row never makes a second run.

The relay is woken by PostgreSQL ``NOTIFY`` (sent in the committing transaction) and polls
every ``poll_interval`` seconds as a safety net; its ``listening`` event is set while its
``LISTEN`` is in place. When Temporal is unreachable the rows wait and the relay backs off
(up to ``max_backoff`` seconds); nothing is dropped.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import psycopg
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone
from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.db import libpq_params
from orchestration import client as temporal_client
from orchestration.models import IdReusePolicy, OutboxEntry, OutboxKind, OutboxStatus
from orchestration.outbox import NOTIFY_CHANNEL, prune_started

logger = logging.getLogger(__name__)

_REUSE = {
    IdReusePolicy.REJECT_DUPLICATE: WorkflowIDReusePolicy.REJECT_DUPLICATE,
    IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY: WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
}
# The server can never accept these rows as they are; retrying would not help.
_PERMANENT = {RPCStatusCode.INVALID_ARGUMENT}
# Deployment-wide trouble (an outage, a rotated API key, a namespace permission): every row
# would fail alike, so the relay stops its pass and backs off; no row is failed for it.
_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
}
START_TIMEOUT = 10.0


class TemporalUnavailable(Exception):
    pass


class Backoff:
    """Exponential back-off: 0.5 s, 1 s, 2 s … up to ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0):
        self.initial, self.maximum, self.current = initial, maximum, 0.0

    def next(self) -> float:
        self.current = min(self.maximum, self.current * 2 if self.current else self.initial)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def row_retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** min(attempts, 9)))


class OutboxRelay:
    """Runs in one thread (its own event loop and Temporal client); ``stop()`` from any.

    ``listening`` is a ``threading.Event`` set once ``LISTEN`` succeeded and cleared when
    that connection is lost or closed: from then on a commit wakes the relay at once.
    ``start_row`` is the one place a row reaches Temporal; wrap it to observe or refuse
    starts.
    """

    def __init__(
        self,
        *,
        batch_size: int = 100,
        poll_interval: float = 2.0,
        retention: timedelta = timedelta(days=7),
        prune_interval: float = 3600.0,
        max_backoff: float = 30.0,
        connect: Callable[[], Awaitable[Client]] = temporal_client.connect,
    ):
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.prune_interval = prune_interval
        self._connect = connect
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._listener: psycopg.Connection | None = None
        self.listening = threading.Event()
        self._backoff = Backoff(maximum=max_backoff)
        self._listen_backoff = Backoff(initial=1.0, maximum=60.0)
        self._listen_retry_at = 0.0

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        """Relay until ``stop()``. Blocking; run it in a thread of its own."""
        last_prune = float("-inf")
        try:
            while not self.stopping:
                close_old_connections()
                if time.monotonic() - last_prune >= self.prune_interval:
                    last_prune = time.monotonic()
                    self._prune()  # needs only the database: goes on while Temporal is down
                try:
                    processed = self.relay_once()
                except TemporalUnavailable as exc:
                    delay = self._backoff.next()
                    logger.warning("Temporal unreachable (%s); retrying in %.1fs", exc, delay)
                    self._stop.wait(delay)
                    continue
                except DatabaseError as exc:
                    delay = self._backoff.next()
                    logger.warning("outbox database error (%s); retrying in %.1fs", exc, delay)
                    connection.close()
                    self._stop.wait(delay)
                    continue
                except Exception:  # the relay must outlive any bug in one pass
                    delay = self._backoff.next()
                    logger.exception("outbox relay pass failed; retrying in %.1fs", delay)
                    self._stop.wait(delay)
                    continue
                self._backoff.reset()
                if processed < self.batch_size:
                    self._wait_for_work()
        finally:
            self.close()

    def relay_once(self) -> int:
        """Claim due rows and start their workflows. Returns how many rows were handled.

        Raises ``TemporalUnavailable`` when Temporal cannot be reached; rows already
        started in this batch are recorded, the rest stay pending.
        """
        client = self._get_client()
        unavailable: Exception | None = None
        with transaction.atomic():
            rows = list(
                OutboxEntry.objects.select_for_update(skip_locked=True)
                .filter(status=OutboxStatus.PENDING, available_at__lte=timezone.now())
                .order_by("available_at", "id")[: self.batch_size]
            )
            for row in rows:
                try:
                    row.run_id = self.start_row(client, row)
                except WorkflowAlreadyStartedError:
                    row.run_id = ""  # started before, by this row or an earlier one
                except (RPCError, TimeoutError, OSError) as exc:
                    if self._is_unavailable(exc):
                        # Not this row's fault: no attempt is counted and it is not pushed
                        # back; the relay backs off and the rows go in order once it is over.
                        row.last_error = _describe(exc)
                        row.save(update_fields=["last_error"])
                        unavailable = exc
                        break
                    self._record_failure(row, exc)
                    continue
                except Exception as exc:  # e.g. arguments the SDK cannot send: this row only
                    logger.exception("outbox row %s could not be sent", row.pk)
                    self._record_failure(row, exc)
                    continue
                row.status = OutboxStatus.STARTED
                row.started_at = timezone.now()
                row.attempts += 1
                row.last_error = ""
                row.save(update_fields=["status", "started_at", "attempts", "last_error", "run_id"])
                if row.kind == OutboxKind.SIGNAL:
                    logger.info("signalled %s to %s", row.workflow_type, row.workflow_id)
                else:
                    logger.info(
                        "started %s %s on %s", row.workflow_type, row.workflow_id, row.task_queue
                    )
        if unavailable is not None:
            raise TemporalUnavailable(str(unavailable)) from unavailable
        return len(rows)

    # --- pieces ------------------------------------------------------------------------
    def _prune(self) -> None:
        """Delete started rows past the retention; a failure is logged, never fatal, and
        never holds up starts (the next prune is an interval later)."""
        try:
            if pruned := prune_started(older_than=self.retention):
                logger.info("pruned %d started outbox rows", pruned)
        except Exception:
            logger.exception("pruning started outbox rows failed; trying again later")

    def start_row(self, client: Client, row: OutboxEntry) -> str:
        """Start the row's workflow (or send its signal); returns the new run id, "" for a
        signal. Raises what the SDK raises; ``relay_once`` decides what that means."""
        if row.kind == OutboxKind.SIGNAL:
            handle = client.get_workflow_handle(row.workflow_id)
            self._run(
                asyncio.wait_for(handle.signal(row.workflow_type, row.arguments), START_TIMEOUT)
            )
            return ""
        priority = Priority(
            priority_key=row.priority_key or None, fairness_key=row.fairness_key or None
        )
        start = client.start_workflow(
            row.workflow_type,
            row.arguments,
            id=row.workflow_id,
            task_queue=row.task_queue,
            id_reuse_policy=_REUSE[row.id_reuse_policy],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            priority=priority,
        )
        handle = self._run(asyncio.wait_for(start, START_TIMEOUT))
        return handle.result_run_id or ""

    @staticmethod
    def _is_unavailable(exc: Exception) -> bool:
        if isinstance(exc, RPCError):
            return exc.status in _UNAVAILABLE
        return True  # timeouts and socket errors

    def _record_failure(self, row: OutboxEntry, exc: Exception) -> None:
        row.attempts += 1
        row.last_error = _describe(exc)
        status = exc.status if isinstance(exc, RPCError) else None
        # A signal to a workflow that has closed (or never ran) can never be delivered.
        gone = row.kind == OutboxKind.SIGNAL and status == RPCStatusCode.NOT_FOUND
        permanent = status in _PERMANENT or gone
        if permanent:
            row.status = OutboxStatus.FAILED
            logger.error("outbox row %s refused by Temporal: %s", row.pk, row.last_error)
        else:
            row.available_at = timezone.now() + row_retry_delay(row.attempts)
        row.save(update_fields=["attempts", "last_error", "status", "available_at"])

    def _get_client(self) -> Client:
        if self._client is None:
            try:
                self._client = self._run(asyncio.wait_for(self._connect(), START_TIMEOUT))
            except Exception as exc:
                raise TemporalUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return self._client

    def _run(self, coro):
        """Run ``coro`` on this relay's own event loop (the relay's thread is sync)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def _wait_for_work(self) -> None:
        """Sleep until a NOTIFY arrives, ``poll_interval`` passes, or ``stop()``."""
        deadline = time.monotonic() + self.poll_interval
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            listener = self.listener()
            if listener is None:
                self._stop.wait(min(left, 0.5))
                continue
            try:
                for _ in listener.notifies(timeout=min(left, 0.5), stop_after=1):
                    return
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
                self._close_listener()

    def listener(self) -> psycopg.Connection | None:
        """The LISTEN connection, made on first use with the same connection parameters as
        Django's (TLS client certificates, ``options``, a service file…); None while it cannot
        be made: the relay then polls, and tries again after a back-off."""
        if self._listener is None and time.monotonic() >= self._listen_retry_at:
            try:
                self._listener = psycopg.connect(**libpq_params(), autocommit=True)
                self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self._listen_backoff.reset()
                self.listening.set()
            except psycopg.Error as exc:
                delay = self._listen_backoff.next()
                logger.warning("cannot LISTEN for outbox rows (%s); polling, retry in %.0fs",
                               exc, delay)  # fmt: skip
                self._listen_retry_at = time.monotonic() + delay
                self._close_listener()
        return self._listener

    def _close_listener(self) -> None:
        self.listening.clear()
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
            self._listener = None

    def close(self) -> None:
        """Release the LISTEN connection, this thread's database connection and the loop."""
        self._close_listener()
        connection.close()
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        self._client = None


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
