"""Starting a pass's rows on Temporal, side by side, with no transaction open.

Exactly once is Temporal's to guarantee, not the lease's: starts use deterministic workflow
ids with ``REJECT_DUPLICATE`` (or, where a retry after failure is wanted,
``ALLOW_DUPLICATE_FAILED_ONLY``) and ``USE_EXISTING``, and ``WorkflowAlreadyStartedError``
counts as started: replaying a row (its relay died after the start, before recording it)
never makes a second run. The lease only keeps live relays from doing the same work twice:
a row is started only while its lease has at least ``start_timeout`` left.

Starts ask for eager execution: when this process also runs a worker for the row's task
queue on the same client (``run_temporal_worker`` shares its client with its relay) and
that worker has a free slot, the server hands the run's first workflow task back in the
start's answer instead of through the task queue, which saves a dispatch (tens of
milliseconds). Otherwise, and for delayed starts, the server starts the run as usual.
"""

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from django.db import connection
from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core import tracing
from orchestration.models import IdReusePolicy, OutboxEntry, OutboxKind
from orchestration.relay.claim import start_delay
from orchestration.relay.errors import TemporalUnavailable, deployment_wide

START_TIMEOUT = 10.0
START_CONCURRENCY = 16

_REUSE = {
    IdReusePolicy.REJECT_DUPLICATE: WorkflowIDReusePolicy.REJECT_DUPLICATE,
    IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY: WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
}


class Starting:
    """The ``OutboxRelay``'s calls to Temporal: one client for the relay, one event loop per
    thread that uses it."""

    start_timeout: float
    start_concurrency: int
    _lock: threading.Lock
    _client: Client | None
    _connect: Callable[[], Awaitable[Client]]
    _loops: list[asyncio.AbstractEventLoop]
    _thread_loop: threading.local

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
                if deployment_wide(exc):
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
            start_delay=start_delay(row),
            request_eager_start=True,
        )
        handle = self._run(asyncio.wait_for(start, self.start_timeout))
        return handle.result_run_id or ""

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
