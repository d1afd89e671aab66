"""The outbox relay: starts recorded workflows on Temporal, each exactly once.

Rows are leased, never held locked across a call to Temporal. A pass claims up to
``batch_size`` due rows in one short statement (``UPDATE … WHERE id IN (SELECT … FOR UPDATE
SKIP LOCKED) RETURNING``) that stamps them with this relay's id and a lease expiry, then
starts them with no transaction open, and records each outcome in a statement of its own
that applies only while the row's lease is still this relay's. Any number of relays can run
side by side; a relay that dies leaves leases that expire after ``lease`` seconds, and
another relay takes the rows. Due times and leases are read and written with the database's
clock (``now()``), so clock skew between machines changes nothing.

Exactly once is Temporal's to guarantee, not the lease's: starts use deterministic workflow
ids with ``REJECT_DUPLICATE`` (or, where a retry after failure is wanted,
``ALLOW_DUPLICATE_FAILED_ONLY``) and ``USE_EXISTING``, and ``WorkflowAlreadyStartedError``
counts as started: replaying a row (its relay died after the start, before recording it)
never makes a second run. The lease only keeps live relays from doing the same work twice:
a row is started only while its lease has at least ``start_timeout`` left.

Errors are sorted by whom they concern. Deployment-wide trouble (Temporal unreachable,
``RESOURCE_EXHAUSTED``, credentials or permissions refused) charges no row: the pass stops,
its remaining leases are released, and the relay backs off (up to ``max_backoff`` seconds)
and then retries them at once. Anything else is the row's: it is charged an attempt and
retried later with a growing delay (a start that times out included, so one row that never
answers cannot hold up the rows behind it), or failed for good when Temporal refuses it
as it is.

The rows of a pass are started concurrently (``start_concurrency`` at once) and their
outcomes recorded once the pass's starts are done. A relay runs ``lanes`` (2) passes at once,
each in a loop of its own: a row written while one lane is busy with its pass is claimed by
another at once, not after that pass. Rows for one workflow id go one pass
after another, in the order they were written: a signal never overtakes the start it
follows.

Starts ask for eager execution: when this process also runs a worker for the row's task
queue on the same client (``run_temporal_worker`` shares its client with its relay) and
that worker has a free slot, the server hands the run's first workflow task back in the
start's answer instead of through the task queue, which saves a dispatch (tens of
milliseconds). Otherwise, and for delayed starts, the server starts the run as usual.

Admission by tenant (``runs_per_tenant``, see ``orchestration.admission``): the relay keeps
at most that many of its runs open per fairness key; a tenant's further rows wait in the
outbox until one of its runs closes, while other tenants' rows are claimed at once.

The relay is woken by PostgreSQL ``NOTIFY`` (sent in the committing transaction), and when
one of its admitted runs closes, and polls every ``poll_interval`` seconds as a safety net;
its ``listening`` event is set while its ``LISTEN`` is in place.
"""

import asyncio
import contextlib
import logging
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import DatabaseError, Error, close_old_connections, connection
from django.db.models import F
from django.db.models.functions import Now
from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core import tracing
from core.db import listen
from orchestration import client as temporal_client
from orchestration import metrics
from orchestration.admission import InFlight
from orchestration.models import IdReusePolicy, OutboxEntry, OutboxKind, OutboxStatus
from orchestration.outbox import NOTIFY_CHANNEL, prune_started

logger = logging.getLogger(__name__)

_REUSE = {
    IdReusePolicy.REJECT_DUPLICATE: WorkflowIDReusePolicy.REJECT_DUPLICATE,
    IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY: WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
}
# The server can never accept these rows as they are; retrying would not help.
_PERMANENT = {RPCStatusCode.INVALID_ARGUMENT}
# Deployment-wide trouble (an outage, an overloaded or rate-limiting server, a rotated API
# key, a namespace permission): every row would fail alike, so the relay stops its pass and
# backs off; no row is charged for it. A timeout is not among them: it is one row's (that
# start may be the slow one), and the rows after it go on.
_DEPLOYMENT_WIDE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
}
START_TIMEOUT = 10.0
LEASE = 60.0
START_CONCURRENCY = 16
# Small passes: a row written while a pass is under way waits for that pass to end. Two
# waves of concurrent starts keep a pass short (a few hundred ms under a backlog of
# thousands) without a claim per handful of rows.
BATCH_SIZE = 32
# A tenant whose due starts, with its open runs, number at most this many times
# runs_per_tenant has them all started at once: the cap holds back backlogs, not bursts.
BURST = 4
# Passes under way at once: a row written (or a tenant's slot freed) while one pass starts
# its batch is claimed by the other at once instead of after it.
LANES = 2


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


class _Lane:
    """What one of a relay's loops keeps for itself: its LISTEN connection, back-offs and
    start threads."""

    def __init__(self, max_backoff: float):
        self.followers = False  # the last pass's rows had later rows for their workflows
        self.backoff = Backoff(maximum=max_backoff)
        self.listener: psycopg.Connection | None = None
        self.listen_backoff = Backoff(initial=1.0, maximum=60.0)
        self.listen_retry_at = 0.0
        self.starters: ThreadPoolExecutor | None = None  # its pass's starts, side by side


class OutboxRelay:
    """Runs ``lanes`` loops, each in a thread of its own, all with one Temporal client;
    ``run()`` blocks until ``stop()`` (from any thread). A lane claims, starts and records a
    pass of rows as one relay does; the lanes' claims never take the same row (the rows of
    a pass under way are left out) nor the same tenant slot (``runs_per_tenant``).

    ``listening`` is a ``threading.Event`` set once a lane's ``LISTEN`` succeeded and
    cleared when no lane has one: while it is set a commit wakes the relay at once.
    ``start_row`` is the one place a row reaches Temporal; wrap it to observe or refuse
    starts (it is called from up to ``start_concurrency`` threads at once). ``relay_id`` is
    what this relay writes as its rows' ``lease_owner``.
    """

    def __init__(
        self,
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 2.0,
        retention: timedelta = timedelta(days=7),
        prune_interval: float = 3600.0,
        max_backoff: float = 30.0,
        lease: float = LEASE,
        start_timeout: float = START_TIMEOUT,
        start_concurrency: int = START_CONCURRENCY,
        lanes: int = LANES,
        runs_per_tenant: int | None = None,
        in_flight_window: float = 60.0,
        connect: Callable[[], Awaitable[Client]] = temporal_client.connect,
    ):
        if lease <= start_timeout:
            raise ValueError("lease must be longer than start_timeout (a start must fit in it).")
        if start_concurrency < 1:
            raise ValueError("start_concurrency must be at least 1.")
        if lanes < 1:
            raise ValueError("lanes must be at least 1.")
        self.lanes = lanes
        self._lock = threading.Lock()  # claims, and the pieces made on first use
        self._under_way: set[int] = set()  # rows leased by this relay's passes under way
        self._lane_of_thread = threading.local()
        self._lane_states: list[_Lane] = []
        self._max_backoff = max_backoff
        if runs_per_tenant is None:
            runs_per_tenant = settings.OUTBOX_RUNS_PER_TENANT
        if runs_per_tenant < 0:
            raise ValueError("runs_per_tenant must be 0 (no cap) or more.")
        self.runs_per_tenant, self.in_flight_window = runs_per_tenant, in_flight_window
        self._in_flight: InFlight | None = None
        self.start_concurrency = start_concurrency
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._thread_loop = threading.local()
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.prune_interval = prune_interval
        self.lease = lease
        self.start_timeout = start_timeout
        self.relay_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-100:]
        self._connect = connect
        self._stop = threading.Event()
        self._client: Client | None = None
        self.listening = threading.Event()

    @property
    def _lane(self) -> _Lane:
        """The calling thread's lane (made on first use)."""
        lane = getattr(self._lane_of_thread, "lane", None)
        if lane is None:
            lane = self._lane_of_thread.lane = _Lane(self._max_backoff)
            with self._lock:
                self._lane_states.append(lane)
        return lane

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the loop ----------------------------------------------------------------------
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

    def relay_once(self) -> int:
        """Lease due rows, start their workflows with no transaction open, record each
        outcome. Returns how many rows were claimed.

        Raises ``TemporalUnavailable`` on deployment-wide trouble; rows started before it
        are recorded, the rest are released uncharged for the next pass.
        """
        client = self._get_client()
        # The lease runs from the claim's now(), which is later than this: a row is started
        # only while at least start_timeout of its lease is left.
        last_start = time.monotonic() + self.lease - self.start_timeout
        rows = self.claim()
        self._lane.followers = any(getattr(row, "has_follower", False) for row in rows)
        if not rows:
            return 0
        watched: set[int] = set()
        try:
            return self._start_and_record(client, rows, last_start, watched)
        finally:
            self._settle(rows, watched)

    def _start_and_record(
        self, client: Client, rows: list[OutboxEntry], last_start: float, watched: set[int]
    ) -> int:
        outcomes = self._start_all(client, rows, last_start)
        unstarted, started, trouble = [], [], None
        for row in rows:
            outcome = outcomes.get(row.pk)
            if outcome is not None and _deployment_wide(outcome) and trouble is None:
                # Not this row's fault: no attempt is counted and it is not pushed back; the
                # relay backs off and the rows go in order once it is over. The first row
                # that met it is released first, with the error noted on it.
                trouble = outcome
                unstarted.insert(0, row)
            elif outcome is None or _deployment_wide(outcome):
                unstarted.append(row)
            elif isinstance(outcome, Exception):
                if not isinstance(outcome, (RPCError, TimeoutError)):
                    logger.error("outbox row %s could not be sent", row.pk, exc_info=outcome)
                self._record_failure(row, outcome)
            else:
                started.append((row, outcome))
        self._record_started(started)
        watched |= self._watch(client, started)
        if trouble is not None:
            self._release(unstarted, error=trouble)
            metrics.relay_error("deployment_wide")
            raise TemporalUnavailable(_describe(trouble)) from trouble
        if unstarted:  # the lease is running out
            logger.info("%d outbox row(s) left for the next pass", len(unstarted))
            self._release(unstarted)
        return len(rows)

    def _start_all(self, client: Client, rows: list[OutboxEntry], last_start: float) -> dict:
        """Start ``rows`` (distinct workflow ids, see ``claim``), up to ``start_concurrency``
        at once. Returns ``{pk: run id | exception}``; a row not tried (deployment-wide
        trouble was met, or the lease is running out) is absent. Anything that is not an
        ``Exception`` (``SystemExit``…) propagates, once every start under way is done."""
        outcomes: dict[int, str | Exception] = {}
        halted = threading.Event()

        def start(row: OutboxEntry) -> None:
            if halted.is_set() or time.monotonic() > last_start:
                return
            try:
                outcomes[row.pk] = self.start_row(client, row)
            except WorkflowAlreadyStartedError:
                outcomes[row.pk] = ""  # started before, by this row or an earlier one
            except Exception as exc:
                outcomes[row.pk] = exc
                if _deployment_wide(exc):
                    halted.set()

        if len(rows) == 1 or self.start_concurrency == 1:
            for row in rows:
                start(row)
            return outcomes

        def start_in_starter(row: OutboxEntry) -> None:
            try:
                start(row)
            finally:
                connection.close()  # a wrapped start_row may have used the database

        lane = self._lane
        if lane.starters is None:
            lane.starters = ThreadPoolExecutor(
                self.start_concurrency, thread_name_prefix="outbox-start"
            )
        futures = [lane.starters.submit(start_in_starter, row) for row in rows]
        for future in futures:
            future.exception()  # wait for every start before raising any
        for future in futures:
            future.result()
        return outcomes

    def claim(self) -> list[OutboxEntry]:
        """Lease up to ``batch_size`` due pending rows to this relay in one statement (its
        own short transaction): rows whose lease is live elsewhere, or that another relay is
        claiming at this instant, are skipped.

        Fair between fairness keys (tenants): each key's oldest row first, then each key's
        second, and so on, oldest first within a turn. A tenant that enqueued thousands of
        tasks in one transaction does not put another tenant's rows behind all of them.

        Rows for one workflow id go one at a time, in the order they were written: a row
        waits while an earlier one for the same id is pending (a signal is never sent before
        the start it follows, which it would not find). So no two rows of a batch share a
        workflow id, and a batch's rows can be started side by side.

        With ``runs_per_tenant`` (N), a key's starts are claimed only while it has fewer than N
        open runs through this relay, or while all of its due starts fit, with its open
        runs, in ``BURST`` x N: a backlog goes N at a time, a small burst at once. Signals,
        delayed starts (``run_after``) and rows with no key are not held back. The starts
        claimed count as open runs at once (``_settle`` drops those that did not become
        runs). The rows of this relay's passes under way are left out.
        """
        with self._lock:
            if self.runs_per_tenant and self._in_flight is None:
                self._in_flight = InFlight(window=self.in_flight_window)
            open_runs = self._in_flight.open_runs() if self._in_flight is not None else {}
            rows = self._claim(open_runs, sorted(self._under_way))
            self._under_way.update(row.pk for row in rows)
            for row in rows:
                if self._counted(row):
                    self._in_flight.admit(row.fairness_key)
        return rows

    def _claim(self, open_runs: dict[str, int], under_way: list[int]) -> list[OutboxEntry]:
        cap = self.runs_per_tenant
        table = connection.ops.quote_name(OutboxEntry._meta.db_table)
        due = """status = %s AND available_at <= now()
                 AND (lease_expires_at IS NULL OR lease_expires_at <= now()
                      OR lease_owner = %s)"""
        # One round trip, where the ORM would need a transaction and three; the only name
        # put into the text is the model's own table, quoted. The conditions are repeated
        # where the rows are locked, so that a row another relay claimed meanwhile (a newer
        # version, which the lock re-checks) is skipped. Window functions (sorts), not a
        # correlated subquery: right after a transaction wrote thousands of rows, before
        # autovacuum analysed them, the planner took the table for empty and ran a
        # NOT EXISTS as a nested loop over every pair (0.6 s for 2,000 rows).
        rows = OutboxEntry.objects.raw(
            f"""
            UPDATE {table} SET lease_owner = %s,
                               lease_expires_at = now() + make_interval(secs => %s)
            WHERE id IN (
                SELECT id FROM {table}
                WHERE {due} AND id = ANY(ARRAY(
                    SELECT id FROM (
                        SELECT id, available_at, fairness_key, counted,
                               row_number() OVER by_key AS turn,
                               count(*) FILTER (WHERE counted) OVER by_key AS nth_start,
                               count(*) FILTER (WHERE counted)
                                   OVER (PARTITION BY fairness_key) AS starts_due
                        FROM (
                            SELECT id, available_at, fairness_key, status, lease_expires_at,
                                   lease_owner,
                                   min(id) OVER (PARTITION BY workflow_id) AS first_id,
                                   kind = %s AND fairness_key <> ''
                                       AND COALESCE(run_after <= now(), true) AS counted
                            FROM {table} WHERE status = %s
                        ) AS pending
                        WHERE id = first_id AND {due} AND NOT id = ANY(%s::bigint[])
                        WINDOW by_key AS (PARTITION BY fairness_key ORDER BY available_at, id)
                    ) AS candidates
                    LEFT JOIN unnest(%s::text[], %s::int[]) AS admitted(key, open_runs)
                           ON admitted.key = candidates.fairness_key
                    WHERE %s = 0 OR NOT candidates.counted
                          OR COALESCE(admitted.open_runs, 0) + candidates.nth_start <= %s
                          OR COALESCE(admitted.open_runs, 0) + candidates.starts_due <= %s
                    ORDER BY turn, available_at, id
                    LIMIT %s
                ))
                FOR UPDATE SKIP LOCKED
            )
            RETURNING *, GREATEST(EXTRACT(EPOCH FROM run_after - now()), 0)::float8
                         AS start_delay_seconds,
                      EXISTS (SELECT 1 FROM {table} AS later
                              WHERE later.workflow_id = {table}.workflow_id
                                AND later.status = %s AND later.id > {table}.id)
                         AS has_follower
            """,  # noqa: S608
            [self.relay_id, self.lease, OutboxStatus.PENDING, self.relay_id,
             OutboxKind.START, OutboxStatus.PENDING, OutboxStatus.PENDING, self.relay_id,
             under_way, list(open_runs), list(open_runs.values()), cap, cap, cap * BURST,
             self.batch_size, OutboxStatus.PENDING],
        )  # fmt: skip
        return fair_order(rows)

    # --- pieces ------------------------------------------------------------------------
    def _counted(self, row: OutboxEntry) -> bool:
        """Whether ``row`` takes one of its tenant's slots (``runs_per_tenant``): a start
        with a key, not delayed (what the claim calls ``counted``)."""
        return bool(
            self._in_flight is not None
            and row.kind == OutboxKind.START
            and row.fairness_key
            and not _start_delay(row)
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
        signal. Raises what the SDK raises; ``relay_once`` decides what that means.

        With tracing on this is a span in the trace of the transaction that wrote the row,
        and the Temporal client's interceptor carries it into the workflow."""
        span = f"outbox {row.kind} {row.workflow_type}"
        attributes = {"outbox.id": row.pk, "temporalWorkflowID": row.workflow_id}
        with tracing.continued(row.trace_context, span, attributes):
            return self._start(client, row)

    def _start(self, client: Client, row: OutboxEntry) -> str:
        if row.kind == OutboxKind.SIGNAL:
            handle = client.get_workflow_handle(row.workflow_id)
            signal = handle.signal(row.workflow_type, row.arguments)
            self._run(asyncio.wait_for(signal, self.start_timeout))
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
            start_delay=_start_delay(row),
            request_eager_start=True,
        )
        handle = self._run(asyncio.wait_for(start, self.start_timeout))
        return handle.result_run_id or ""

    def _mine(self, *rows: OutboxEntry):
        """``rows``, as long as this relay still holds their lease (no other relay took it
        after expiry, and no admin retry cleared it)."""
        pks = [row.pk for row in rows]
        return OutboxEntry.objects.filter(pk__in=pks, lease_owner=self.relay_id)

    def _record_started(self, started: list[tuple[OutboxEntry, str]]) -> None:
        """Mark ``started`` (rows and their run ids, "" for a signal or a run started
        before) as started, in one statement, where this relay still holds the lease."""
        if not started:
            return
        table = connection.ops.quote_name(OutboxEntry._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS row SET status = %s, started_at = now(),
                    attempts = row.attempts + 1, last_error = '', run_id = given.run_id,
                    lease_owner = '', lease_expires_at = NULL
                FROM unnest(%s::bigint[], %s::text[]) AS given(id, run_id)
                WHERE row.id = given.id AND row.lease_owner = %s
                RETURNING row.id, EXTRACT(EPOCH FROM row.started_at - row.created_at)::float8
                """,  # noqa: S608 - the only name put in is the model's own table, quoted
                [OutboxStatus.STARTED, [row.pk for row, _ in started],
                 [run_id for _, run_id in started], self.relay_id],
            )  # fmt: skip
            recorded = dict(cursor.fetchall())
        for row, _ in started:
            if row.pk not in recorded:
                # Whoever holds the row now will start it again and be told it already runs.
                logger.info("outbox row %s was started, but its lease was lost", row.pk)
            elif row.kind == OutboxKind.SIGNAL:
                logger.info("signalled %s to %s", row.workflow_type, row.workflow_id)
            else:
                logger.info(
                    "started %s %s on %s", row.workflow_type, row.workflow_id, row.task_queue
                )
                metrics.relay_started(recorded[row.pk])

    def _record_failure(self, row: OutboxEntry, exc: Exception) -> None:
        """Charge ``row`` an attempt: retried after a growing delay, or failed for good when
        Temporal can never accept it as it is."""
        error = _describe(exc)
        status = exc.status if isinstance(exc, RPCError) else None
        # A signal to a workflow that has closed (or never ran) can never be delivered.
        gone = row.kind == OutboxKind.SIGNAL and status == RPCStatusCode.NOT_FOUND
        if status in _PERMANENT or gone:
            outcome = {"status": OutboxStatus.FAILED}
            metrics.relay_error("permanent")
            logger.error("outbox row %s refused by Temporal: %s", row.pk, error)
        else:
            outcome = {"available_at": Now() + row_retry_delay(row.attempts + 1)}
            metrics.relay_error("timeout" if isinstance(exc, TimeoutError) else "row")
            logger.warning("outbox row %s not started (%s); retried later", row.pk, error)
        self._mine(row).update(
            attempts=F("attempts") + 1, last_error=error, lease_owner="", lease_expires_at=None,
            **outcome,
        )  # fmt: skip

    def _release(self, rows: list[OutboxEntry], *, error: Exception | None = None) -> None:
        """Give up the lease of ``rows`` uncharged, due as before; ``error`` is noted on the
        first (the row that met it)."""
        if error is not None and rows:
            self._mine(rows[0]).update(last_error=_describe(error))
        self._mine(*rows).update(lease_owner="", lease_expires_at=None)

    def _get_client(self) -> Client:
        with self._lock:
            if self._client is None:
                try:
                    connecting = asyncio.wait_for(self._connect(), self.start_timeout)
                    self._client = self._run(connecting)
                except Exception as exc:
                    raise TemporalUnavailable(f"{type(exc).__name__}: {exc}") from exc
            return self._client

    def _run(self, coro):
        """Run ``coro`` on the calling thread's event loop of this relay (the relay's
        threads are sync; the Temporal client may be used from any loop)."""
        loop = getattr(self._thread_loop, "loop", None)
        if loop is None:
            loop = self._thread_loop.loop = asyncio.new_event_loop()
            self._loops.append(loop)
        return loop.run_until_complete(coro)

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
                logger.warning("cannot LISTEN for outbox rows (%s); polling, retry in %.0fs",
                               exc, delay)  # fmt: skip
                lane.listen_retry_at = time.monotonic() + delay
                self._close_listener(lane)
        return lane.listener

    def _close_listener(self, lane: _Lane | None = None) -> None:
        lane = lane or self._lane
        if lane.listener is not None:
            with contextlib.suppress(psycopg.Error):
                lane.listener.close()
            lane.listener = None
        if not any(other.listener is not None for other in self._lane_states):
            self.listening.clear()

    def close(self) -> None:
        """Release the leases this relay still holds (best effort: a relay that cannot reach
        the database leaves them to expire), the LISTEN connections, this thread's database
        connection and the loops."""
        for lane in list(self._lane_states):
            self._close_listener(lane)
        if self._in_flight is not None:
            self._in_flight.close()
            self._in_flight = None
        with contextlib.suppress(Error):  # a lost connection is an InterfaceError
            OutboxEntry.objects.filter(lease_owner=self.relay_id).update(
                lease_owner="", lease_expires_at=None
            )
        connection.close()
        for lane in self._lane_states:
            if lane.starters is not None:
                lane.starters.shutdown(wait=True)
                lane.starters = None
        for loop in self._loops:
            loop.close()
        self._loops.clear()
        self._thread_loop = threading.local()
        self._client = None


def _deployment_wide(exc: Exception) -> bool:
    """Whether ``exc`` would meet every row alike (see ``_DEPLOYMENT_WIDE``)."""
    if isinstance(exc, RPCError):
        return exc.status in _DEPLOYMENT_WIDE
    # A timeout is a kind of OSError, but only this start's.
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)


def fair_order(rows) -> list[OutboxEntry]:
    """``rows`` in the order ``claim`` chose them: by turn of their fairness key, then
    oldest first."""
    turns: dict[str, int] = {}
    keyed = []
    for row in sorted(rows, key=lambda row: (row.available_at, row.pk)):
        turns[row.fairness_key] = turns.get(row.fairness_key, 0) + 1
        keyed.append((turns[row.fairness_key], row.available_at, row.pk, row))
    return [row for *_, row in sorted(keyed, key=lambda item: item[:3])]


def _start_delay(row: OutboxEntry) -> timedelta | None:
    """How long the run waits before its first task: ``run_after`` less the claim's
    ``now()`` (the database's clock), none when that is past or unset."""
    seconds = getattr(row, "start_delay_seconds", None)
    return timedelta(seconds=seconds) if seconds else None


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
