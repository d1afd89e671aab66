"""Fleet migration: every tenant schema brought to the code's migrations, one run per deploy.

Writes (``fleet_run_*`` for people and commands; the rest for the workflow's activities)
and reads of ``FleetRun``. A run is requested here and sends ``fleet_run_requested``; the
orchestration app turns that into a ``FleetMigrationWorkflow`` start through the outbox, and
pause / resume / cancel into signals the same way. The workflow then walks the tenants in
schema-name order, a batch at a time: which schemas of a batch are behind costs a constant
number of queries (``schemas_behind``), and only those are migrated, each under its
schema's lock.
"""

import hashlib
import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import errors as pg_errors

from tenants.databases import on_database
from tenants.models import (
    FLEET_RUN_OPEN,
    LIVE,
    FleetFailure,
    FleetRun,
    FleetStatus,
    Tenant,
    TenantStatus,
)
from tenants.schemas.lock import schema_lock
from tenants.schemas.migrate import migrate_schema
from tenants.schemas.migration_state import (
    first_unapplied,
    migration_fingerprint,
    migration_state,
    schemas_behind,
)
from tenants.signals import fleet_run_control_requested, fleet_run_requested

logger = logging.getLogger(__name__)

MIGRATED, CURRENT, SKIPPED, FAILED = "migrated", "current", "skipped", "failed"

# A fleet run is background work, and signups are what people wait for. Before each schema a
# chunk of migrations waits while a tenant is being provisioned (pending or provisioning,
# written in the last PROVISIONING_FRESH seconds: a signup's provisioning under way, not one
# held up by an outage), FLEET_MIGRATION_GIVE_WAY seconds at most per chunk (default 2). It
# cannot wait for a provisioning that waits for it: a provisioning from the template or the
# pool runs as local activities and takes none of the task queue's slots the chunks hold;
# without a usable template its create step needs one, and gets it once a chunk has spent
# its time. With provisionings back to back the fleet slows down; it never stops.
PROVISIONING_FRESH = 5  # seconds
_GIVE_WAY_POLL = 0.01  # seconds

# A schema whose migration times out (``lock_timeout``, ``statement_timeout``) or is a
# deadlock's victim contends with other work on that schema; the database is fine. It is
# tried CONTENTION_ATTEMPTS times in all, CONTENTION_BACKOFF seconds before the second try
# and twice as long before each next, then reported failed like a broken migration, so the
# rest of its chunk goes on and ``--retry-failed`` takes it up later. Any other database
# error (a lost connection) still raises: the chunk's activity retries through the outage.
CONTENTION_ATTEMPTS = 3
CONTENTION_BACKOFF = 1.0  # seconds
_CONTENTION = (
    pg_errors.LockNotAvailable,  # lock_timeout
    pg_errors.QueryCanceled,  # statement_timeout
    pg_errors.DeadlockDetected,
)


class FleetRequestRefused(Exception):
    """A fleet action that cannot apply to the run in its present state (the message says
    which run and why)."""


def fleet_run_id() -> str:
    """``fleet-<digest>`` of the code's migrations and their files: the same for every
    process of one deploy, different for the next deploy that changes a migration."""
    digest = hashlib.sha256("\n".join(migration_fingerprint()).encode()).hexdigest()
    return f"fleet-{digest[:16]}"


# --- people and commands ------------------------------------------------------------------


def fleet_run_request(*, concurrency: int | None = None) -> tuple[FleetRun, bool]:
    """The fleet run for the code's migrations, requested unless it exists. Returns it and
    whether it is new. A new run cancels older runs still open (they migrate towards
    migrations this code no longer has)."""
    concurrency = concurrency or settings.FLEET_MIGRATION_CONCURRENCY
    if concurrency < 1:
        raise FleetRequestRefused(f"concurrency must be at least 1, got {concurrency}.")
    run_id = fleet_run_id()
    with transaction.atomic():
        run, created = FleetRun.objects.get_or_create(
            pk=run_id,
            defaults={
                "migrations": migration_state(),
                "workflow_id": _workflow_id(run_id, 1),
                "concurrency": concurrency,
            },
        )
        if created:
            for older in FleetRun.objects.filter(status__in=FLEET_RUN_OPEN).exclude(pk=run_id):
                _control(older, "cancel")
            fleet_run_requested.send(sender=FleetRun, run=run)
    return run, created


def _workflow_id(run_id: str, attempt: int) -> str:
    # Unique per attempt, not only per run: a database restored or rebuilt at the same
    # migrations makes a new FleetRun row with the same id, and Temporal (which remembers
    # closed runs) must still start its workflow.
    return f"{run_id}-{attempt}-{uuid.uuid4().hex[:8]}"


def fleet_run_retry_failed(*, run_id: str | None = None) -> FleetRun:
    """A further attempt of a finished run over the tenants it failed to migrate, and only
    those. ``run_id`` defaults to the latest run."""
    with transaction.atomic():
        run = _locked(run_id)
        if run.is_open:
            raise FleetRequestRefused(f"Fleet run {run.pk} is still {run.status}: wait for it.")
        failures = run.failures.count()
        if not failures:
            raise FleetRequestRefused(f"Fleet run {run.pk} has no failed tenants to retry.")
        run.attempt += 1
        run.workflow_id = _workflow_id(run.pk, run.attempt)
        run.status, run.retry_failed, run.cursor = FleetStatus.PENDING, True, ""
        run.finished_at = None
        run.save()
        fleet_run_requested.send(sender=FleetRun, run=run)
    return run


_CONTROLS = {
    "pause": ({FleetStatus.PENDING, FleetStatus.RUNNING}, FleetStatus.PAUSED),
    "resume": ({FleetStatus.PAUSED}, FleetStatus.RUNNING),
    "cancel": (set(FLEET_RUN_OPEN) - {FleetStatus.CANCELLING}, FleetStatus.CANCELLING),
}


def fleet_run_control(*, action: str, run_id: str | None = None) -> FleetRun:
    """Pause, resume or cancel a run (the latest by default): its status changes now, and
    its workflow gets the signal after commit. Pausing lets the migrations under way finish
    and starts no more; cancelling does the same, then ends the run."""
    if action not in _CONTROLS:
        raise FleetRequestRefused(f"Unknown action {action!r}: pause, resume or cancel.")
    with transaction.atomic():
        run = _locked(run_id)
        _control(run, action)
    return run


def _control(run: FleetRun, action: str) -> None:
    allowed, target = _CONTROLS[action]
    if run.status not in allowed:
        raise FleetRequestRefused(f"Fleet run {run.pk} is {run.status}: it cannot {action}.")
    run.status = target
    run.save(update_fields=["status", "updated_at"])
    fleet_run_control_requested.send(sender=FleetRun, run=run, action=action)


def _locked(run_id: str | None) -> FleetRun:
    runs = FleetRun.objects.select_for_update()
    run = runs.filter(pk=run_id).first() if run_id else runs.order_by("-created_at").first()
    if run is None:
        raise FleetRequestRefused(f"No fleet run {run_id}." if run_id else "No fleet run yet.")
    return run


# --- the workflow's activities ------------------------------------------------------------


def fleet_run_started(*, run_id: str) -> int:
    """Mark the attempt running (unless paused or cancelled meanwhile) and count what it
    covers: the live (active or suspended) tenants, or the run's failures for a "retry
    failed". Returns it."""
    with transaction.atomic():
        run = FleetRun.objects.select_for_update().get(pk=run_id)
        if run.retry_failed:
            covered = run.failures.count()
        else:
            covered = Tenant.objects.filter(status__in=LIVE).count()
            run.total = covered
        if run.status == FleetStatus.PENDING:
            run.status = FleetStatus.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.save()
    return covered


def fleet_batch(*, run_id: str, after: str, size: int, reach: int = 1) -> dict:
    """The next ``size`` tenants of the run after schema ``after``, split into those behind
    and those already current: four queries, whatever ``size``. While every tenant read is
    current, the ``size`` after them are read as well, up to ``reach`` reads in all, so that
    a fleet with little to apply is walked in fewer round trips. ``last`` is the last schema
    read (``""``: nothing left)."""
    run = FleetRun.objects.only("retry_failed").get(pk=run_id)
    if run.retry_failed:
        tenants = run.failures.values_list("tenant_id", "schema_name", "tenant__database")
    else:
        tenants = Tenant.objects.filter(status__in=LIVE).values_list(
            "id", "schema_name", "database"
        )
    last, behind, current = "", [], []
    for _ in range(reach):
        rows = list(tenants.filter(schema_name__gt=last or after).order_by("schema_name")[:size])
        if not rows:
            break
        stale = _behind([(schema, database) for _, schema, database in rows])
        behind += [str(tenant) for tenant, schema, _ in rows if schema in stale]
        current += [str(tenant) for tenant, schema, _ in rows if schema not in stale]
        last = rows[-1][1]
        if behind or len(rows) < size:
            break
    return {"last": last, "behind": behind, "current": current}


def _behind(schemas: list[tuple[str, str]]) -> set[str]:
    """Those of ``(schema, database)`` behind the code's migrations: ``schemas_behind`` in
    each database, a constant number of queries per database."""
    by_database: dict[str, list[str]] = {}
    for schema, database in schemas:
        by_database.setdefault(database, []).append(schema)
    stale: set[str] = set()
    for database, names in by_database.items():
        with on_database(database):
            stale |= schemas_behind(names)
    return stale


def provisioning_under_way() -> bool:
    """A tenant is being provisioned now (see above); one query on the status index."""
    fresh = timezone.now() - timedelta(seconds=PROVISIONING_FRESH)
    return Tenant.objects.filter(
        status__in=(TenantStatus.PENDING, TenantStatus.PROVISIONING), updated_at__gte=fresh
    ).exists()


def fleet_tenants_migrate(*, tenant_ids: list[str]) -> dict:
    """Migrate several schemas one after another, giving way to provisionings before each
    (see above): ``{tenant_id: outcome}`` as ``fleet_tenant_migrate`` reports them."""
    deadline = time.monotonic() + settings.FLEET_MIGRATION_GIVE_WAY
    results = {}
    for tenant_id in tenant_ids:
        while time.monotonic() < deadline and provisioning_under_way():
            time.sleep(_GIVE_WAY_POLL)
        results[tenant_id] = fleet_tenant_migrate(tenant_id=tenant_id)
    return results


def fleet_tenant_migrate(*, tenant_id: str) -> dict:
    """Migrate one tenant's schema for a fleet run: ``{"outcome", "migration", "error"}``.

    Under the schema's lock, and only while the tenant is live (active or suspended: a
    suspended tenant keeps its data, at the code's migrations): one being provisioned
    (its run migrates its schema) or deleted is left alone. A migration that fails is
    reported with the migration it stopped at, so that one broken schema fails alone; so is
    one that still times out or deadlocks after CONTENTION_ATTEMPTS tries (a failure's
    ``attempts`` says how many were made). A lost database connection raises instead, and
    the activity retries.
    """
    tenant = Tenant.objects.filter(pk=tenant_id).only("schema_name", "database").first()
    if tenant is None:
        return {"outcome": SKIPPED}
    with on_database(tenant.database):
        return _migrate_live(tenant)


def _migrate_live(tenant: Tenant) -> dict:
    name = tenant.schema_name
    with schema_lock(name):
        if not Tenant.objects.filter(pk=tenant.pk, status__in=LIVE).exists():
            return {"outcome": SKIPPED}
        attempt = 1
        while True:
            try:
                ran = migrate_schema(name)
            except (OperationalError, InterfaceError) as exc:
                if not isinstance(exc.__cause__, _CONTENTION):
                    raise  # a lost connection: the activity retries
                if attempt >= CONTENTION_ATTEMPTS:
                    return _failed(name, exc, attempt)
                pause = CONTENTION_BACKOFF * 2 ** (attempt - 1)
                logger.info("fleet: %s, attempt %d: %s; again in %.1fs", name, attempt, exc, pause)
                time.sleep(pause)
                attempt += 1
            except Exception as exc:  # the migration's own error: reported, not retried
                return _failed(name, exc, attempt)
            else:
                return {"outcome": MIGRATED if ran else CURRENT}


def _failed(schema: str, exc: Exception, attempts: int) -> dict:
    migration = first_unapplied(schema)
    logger.warning("fleet: %s failed at %s (attempt %d): %s", schema, migration, attempts, exc)
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    error = f"{type(exc).__name__}: {exc}"[: 4000 - len(tries)] + tries
    return {"outcome": FAILED, "migration": migration, "error": error, "attempts": attempts}


def fleet_batch_recorded(*, run_id: str, after: str, last: str, results: dict) -> bool:
    """Add a batch's outcomes to the run: ``results`` maps tenant id -> outcome dict (tenants
    found current count as ``current``). A compare-and-set on the cursor: recording the same
    batch twice (a retried activity) changes nothing; returns whether this call recorded it.
    """
    with transaction.atomic():
        run = FleetRun.objects.select_for_update().get(pk=run_id)
        if run.cursor != after:
            return False
        outcomes = {tenant: result["outcome"] for tenant, result in results.items()}
        failed = {tenant: results[tenant] for tenant, o in outcomes.items() if o == FAILED}
        fine = [tenant for tenant, outcome in outcomes.items() if outcome != FAILED]
        run.failures.filter(tenant_id__in=fine).delete()
        schema_of = {
            str(tenant): schema
            for tenant, schema in Tenant.objects.filter(pk__in=failed).values_list(
                "id", "schema_name"
            )
        }
        for tenant, result in failed.items():
            FleetFailure.objects.update_or_create(
                run=run,
                tenant_id=tenant,
                defaults={
                    "schema_name": schema_of.get(tenant, ""),
                    "migration": result.get("migration", ""),
                    "error": result.get("error", ""),
                },
            )
        counts = {
            o: sum(1 for v in outcomes.values() if v == o) for o in (MIGRATED, CURRENT, SKIPPED)
        }
        FleetRun.objects.filter(pk=run_id).update(
            migrated=F("migrated") + counts[MIGRATED],
            current=F("current") + counts[CURRENT],
            skipped=F("skipped") + counts[SKIPPED],
            cursor=last,
            updated_at=timezone.now(),
        )
    return True


def fleet_run_finished(*, run_id: str, cancelled: bool) -> dict:
    """Close the attempt: ``cancelled``, ``failed`` (some tenants failed) or ``completed``.
    Returns its summary."""
    with transaction.atomic():
        run = FleetRun.objects.select_for_update().get(pk=run_id)
        if cancelled:
            run.status = FleetStatus.CANCELLED
        else:
            run.status = FleetStatus.FAILED if run.failures.exists() else FleetStatus.COMPLETED
        run.finished_at = timezone.now()
        run.save()
    return fleet_run_summary(run)


# --- reads ----------------------------------------------------------------------------------


def fleet_run_latest() -> FleetRun | None:
    return FleetRun.objects.order_by("-created_at").first()


def fleet_run_summary(run: FleetRun) -> dict:
    failed = run.failures.count()
    return {
        "run": run.pk,
        "status": run.status,
        "attempt": run.attempt,
        "total": run.total,
        "migrated": run.migrated,
        "current": run.current,
        "skipped": run.skipped,
        "failed": failed,
        "done": run.migrated + run.current + run.skipped + failed,
    }


def fleet_schemas_behind(*, batch: int = 500) -> tuple[int, int]:
    """(live tenants whose schema is behind the code's migrations, live tenants): read
    from the schemas themselves, a constant number of queries per ``batch`` tenants."""
    behind = total = 0
    after = ""
    live = Tenant.objects.filter(status__in=LIVE).order_by("schema_name")
    while chunk := list(
        live.filter(schema_name__gt=after).values_list("schema_name", "database")[:batch]
    ):
        behind += len(_behind(chunk))
        total += len(chunk)
        after = chunk[-1][0]
    return behind, total
