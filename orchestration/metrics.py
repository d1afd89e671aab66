"""The product's Prometheus metrics (``tenantflow_*``), shared by the worker and the web server.

Counters and histograms are observed where things happen (the relay, the lifecycle
activities, the onboarding receivers and activities) in this process's default registry.
Gauges that describe the database (outbox backlog, tenants by status) are computed when
scraped, by ``DatabaseGauges``: one cheap query each, nothing running in between.
"""

import logging
from collections.abc import Iterator

from django.db import DatabaseError, close_old_connections, connection, transaction
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import tracing
from orchestration.models import OutboxEntry, OutboxKind, OutboxStatus
from tenants.fleet import fleet_run_latest, fleet_run_summary
from tenants.models import TenantStatus
from tenants.selectors import tenant_counts_by_status

FLEET_COUNTS = ("total", "migrated", "current", "skipped", "failed")

logger = logging.getLogger(__name__)

# Seconds: a start is usually well under one; a lifecycle run takes seconds to minutes (and
# hours when a step waits out an outage).
_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_RUN_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)

RELAY_START_LATENCY = Histogram(
    "tenantflow_relay_start_latency_seconds",
    "From an outbox row's commit (created_at) to its start on Temporal (started_at), both "
    "database times.",
    buckets=_LATENCY_BUCKETS,
)
RELAY_ERRORS = Counter(
    "tenantflow_relay_errors",
    "Outbox starts that failed, by kind: deployment_wide (pass stopped, no row charged), "
    "row (retried later), timeout (retried later), permanent (row failed for good).",
    ["kind"],
)
RUN_DURATION = Histogram(
    "tenantflow_tenant_run_duration_seconds",
    "From the request of a provisioning or deletion run (its outbox row's created_at) to "
    "the commit of its last step (mark active / mark deleted).",
    ["run"],
    buckets=_RUN_BUCKETS,
)
ONBOARDING_OUTCOMES = Counter(
    "tenantflow_onboarding_outcomes",
    "How onboarding ended: verified (email verified) or expired (never verified).",
    ["outcome"],
)
for _kind in ("deployment_wide", "row", "timeout", "permanent"):
    RELAY_ERRORS.labels(_kind)
for _run in ("provisioning", "deletion"):
    RUN_DURATION.labels(_run)
for _outcome in ("verified", "expired"):
    ONBOARDING_OUTCOMES.labels(_outcome)


def relay_error(kind: str) -> None:
    RELAY_ERRORS.labels(kind).inc()


def relay_started(seconds: float) -> None:
    """Observe a started row's commit->start latency (from the times the database wrote)."""
    RELAY_START_LATENCY.observe(max(0.0, seconds))


def run_finished_on_commit(run: str, workflow_id: str) -> None:
    """After the current transaction commits, observe how long the run ``workflow_id`` took
    since it was requested (the outbox row that started it). A run whose row was pruned is
    not observed. A step retried after its commit is observed again (rare)."""

    def observe() -> None:
        row = (
            OutboxEntry.objects.filter(workflow_id=workflow_id, kind=OutboxKind.START)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if row is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT EXTRACT(EPOCH FROM now() - %s)", [row])
                (seconds,) = cursor.fetchone()
            RUN_DURATION.labels(run).observe(max(0.0, float(seconds)))

    transaction.on_commit(observe)


def onboarding_outcome(outcome: str) -> None:
    ONBOARDING_OUTCOMES.labels(outcome).inc()


class DatabaseGauges(Collector):
    """Scrape-time gauges: pending outbox rows and the age of the oldest (database clock),
    and tenants by status. A database error skips them for that scrape (and is logged).

    ``close_connection``: close this thread's connection after each scrape (for a metrics
    server that serves each scrape on a new thread, so it never keeps a pooled connection).
    """

    def __init__(self, *, close_connection: bool = False):
        self.close_connection = close_connection

    def describe(self) -> list:
        return []  # nothing to query when registered; names are checked at scrape

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            # Scrapes are housekeeping: their statements would make a trace every few seconds.
            with tracing.untraced():
                pending, oldest, by_status = self._read()
                fleet = self._fleet()
        except DatabaseError as exc:
            logger.warning("metrics: database gauges skipped (%s)", exc)
            return
        finally:
            if self.close_connection:
                close_old_connections()
                connection.close()
        yield GaugeMetricFamily(
            "tenantflow_outbox_pending_rows", "Outbox rows not started yet.", value=pending
        )
        yield GaugeMetricFamily(
            "tenantflow_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row (0 when none), by the database clock.",
            value=oldest,
        )
        tenants = GaugeMetricFamily("tenantflow_tenants", "Tenants by status.", labels=["status"])
        for status in TenantStatus.values:
            tenants.add_metric([status], by_status.get(status, 0))
        yield tenants
        if fleet is not None:
            yield from fleet

    def _fleet(self) -> list[GaugeMetricFamily] | None:
        """The latest fleet run's progress: tenants by outcome, and whether it is open."""
        run = fleet_run_latest()
        if run is None:
            return None
        summary = fleet_run_summary(run)
        tenants = GaugeMetricFamily(
            "tenantflow_fleet_run_tenants",
            "The latest fleet migration run: tenants it covers (total) and its outcomes so far.",
            labels=["run", "outcome"],
        )
        for outcome in FLEET_COUNTS:
            tenants.add_metric([run.pk, outcome], summary[outcome])
        running = GaugeMetricFamily(
            "tenantflow_fleet_run_open",
            "1 while the latest fleet migration run is pending, running, paused or cancelling.",
            labels=["run", "status"],
        )
        running.add_metric([run.pk, run.status], 1 if run.is_open else 0)
        return [tenants, running]

    def _read(self) -> tuple[int, float, dict[str, int]]:
        table = connection.ops.quote_name(OutboxEntry._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "  # noqa: S608
                f"FROM {table} WHERE status = %s",
                [OutboxStatus.PENDING],
            )
            pending, oldest = cursor.fetchone()
        return int(pending), float(oldest), tenant_counts_by_status()
