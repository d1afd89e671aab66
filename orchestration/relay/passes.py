"""The ``OutboxRelay``: its options, and one pass (claim, start, record).

A pass claims due rows (``claim``), starts them with no transaction open, ``start_concurrency``
at once (``start``), and records each outcome once the pass's starts are done
(``outcomes``), sorting the errors by whom they concern (``errors``).
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from django.conf import settings
from temporalio.client import Client
from temporalio.service import RPCError

from orchestration import client as temporal_client
from orchestration import metrics
from orchestration.models import OutboxEntry
from orchestration.relay.admission import Admitting, InFlight
from orchestration.relay.claim import BATCH_SIZE, Claiming
from orchestration.relay.cleanup import CleaningUp
from orchestration.relay.errors import TemporalUnavailable, deployment_wide, describe
from orchestration.relay.lanes import LANES, Lane, Lanes
from orchestration.relay.outcomes import Recording
from orchestration.relay.start import START_CONCURRENCY, START_TIMEOUT, Starting

logger = logging.getLogger(__package__)  # "orchestration.relay": log lines keep one logger name

LEASE = 60.0


class OutboxRelay(Lanes, Claiming, Admitting, Starting, Recording, CleaningUp):
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
        self._lane_states: list[Lane] = []
        self._max_backoff = max_backoff
        if runs_per_tenant is None:
            runs_per_tenant = settings.OUTBOX_RUNS_PER_TENANT
        if runs_per_tenant < 0:
            raise ValueError("runs_per_tenant must be 0 (no cap) or more.")
        self.runs_per_tenant, self.in_flight_window = runs_per_tenant, in_flight_window
        self._in_flight: InFlight | None = None
        self.start_concurrency = start_concurrency
        self._loops = []
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
            if outcome is not None and deployment_wide(outcome) and trouble is None:
                # Not this row's fault: no attempt is counted and it is not pushed back; the
                # relay backs off and the rows go in order once it is over. The first row
                # that met it is released first, with the error noted on it.
                trouble = outcome
                unstarted.insert(0, row)
            elif outcome is None or deployment_wide(outcome):
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
            raise TemporalUnavailable(describe(trouble)) from trouble
        if unstarted:  # the lease is running out
            logger.info("%d outbox row(s) left for the next pass", len(unstarted))
            self._release(unstarted)
        return len(rows)
