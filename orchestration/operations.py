"""What the admin's operations page shows: everything that needs an operator, each section
read from the database in one or two cheap queries, and failed onboarding runs from one
Temporal visibility query that may fail without taking the page down.

The page is a list of sections (``SECTIONS``). Adding one (the current fleet run, say) is a
function that returns a ``Section`` plus its template
``admin/orchestration/operations/<key>.html``, added to ``SECTIONS`` with the permission
that lets a user see it.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, Q, Value, When
from django.db.models.functions import Now

from accounts.models import User
from core.temporal_ui import workflow_ui_url
from orchestration import client as temporal_client
from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.outbox import workflow_type
from orchestration.receivers import onboarding_workflow_id
from orchestration.workflows.user_onboarding import UserOnboardingWorkflow
from tenants.models import Tenant, TenantStatus

logger = logging.getLogger(__name__)

ROW_LIMIT = 50  # rows listed per section; the counts cover every row


@dataclass
class Section:
    """One part of the page. ``count``: how many things need attention (None when it could
    not be read); ``rows``: up to ``ROW_LIMIT`` of them, for the section's template;
    ``unavailable``: why it could not be read, shown instead of the rows."""

    key: str
    title: str
    count: int | None
    rows: list = field(default_factory=list)
    unavailable: str = ""
    summary: str = ""  # one line under the title (the counts by kind, the threshold…)
    more: bool = False  # more rows exist than are listed
    at_least: bool = False  # ``count`` is a lower bound (a query that stops at a limit)

    @property
    def template(self) -> str:
        return f"admin/orchestration/operations/{self.key}.html"

    @property
    def count_text(self) -> str:
        if self.count is None:
            return "unknown"
        return f"{self.count}+" if self.at_least else str(self.count)


def age(delta: timedelta | None) -> str:
    """``timedelta(seconds=3725)`` -> ``"1 h 2 min"``: the two largest units, for a table."""
    if delta is None:
        return "—"
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"


# --- the outbox ------------------------------------------------------------------------------


@dataclass
class OutboxRow:
    pk: int
    kind: str
    workflow_type: str
    workflow_id: str
    status: str
    attempts: int
    age: str
    last_error: str
    ui_url: str


def outbox_section() -> Section:
    """Rows not started: failed ones first (the server refused them for good), then pending
    ones that are retrying (an error is recorded), then the rest, oldest first. Ages are by
    the database's clock, as the relay's are."""
    waiting = OutboxEntry.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED])
    counts = dict(waiting.order_by().values_list("status").annotate(n=Count("id")))
    rank = Case(
        When(status=OutboxStatus.FAILED, then=Value(0)),
        When(~Q(last_error=""), then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    entries = waiting.annotate(rank=rank, waited=Now() - F("created_at")).order_by(
        "rank", "created_at", "id"
    )[:ROW_LIMIT]
    rows = [
        OutboxRow(
            pk=e.pk,
            kind=e.kind,
            workflow_type=e.workflow_type,
            workflow_id=e.workflow_id,
            status=e.status,
            attempts=e.attempts,
            age=age(e.waited),
            last_error=e.last_error,
            ui_url=workflow_ui_url(e.workflow_id),
        )
        for e in entries
    ]
    failed, pending = counts.get(OutboxStatus.FAILED, 0), counts.get(OutboxStatus.PENDING, 0)
    return Section(
        key="outbox",
        title="Outbox rows not started",
        count=failed + pending,
        rows=rows,
        summary=f"{failed} failed, {pending} pending",
        more=failed + pending > len(rows),
    )


# --- tenants ---------------------------------------------------------------------------------

RETRY_PROVISIONING = "retry_provisioning"
REQUEUE_DELETION = "requeue_deletion"


@dataclass
class TenantRow:
    pk: uuid.UUID
    name: str
    subdomain: str
    status: str
    idle: str
    current_step: str
    last_error: str
    workflow_id: str
    ui_url: str
    action: str  # the admin action that helps it ("" for none)


def tenants_section() -> Section:
    """Failed tenants, and tenants provisioning or deleting with no progress (no step
    begun or done) for ``OPERATIONS_STUCK_AFTER`` seconds, by the database's clock. A
    provisioning run that is stuck gets no action here: it may be waiting out an outage; its
    Temporal page says, and deleting the tenant stops it."""
    threshold = timedelta(seconds=settings.OPERATIONS_STUCK_AFTER)
    stuck = Q(status__in=[TenantStatus.PROVISIONING, TenantStatus.DELETING]) & Q(
        updated_at__lt=Now() - threshold
    )
    found = Tenant.objects.filter(stuck | Q(status=TenantStatus.FAILED))
    counts = dict(found.order_by().values_list("status").annotate(n=Count("id")))
    tenants = found.annotate(waited=Now() - F("updated_at")).order_by("updated_at", "pk")
    actions = {TenantStatus.FAILED: RETRY_PROVISIONING, TenantStatus.DELETING: REQUEUE_DELETION}
    rows = [
        TenantRow(
            pk=t.pk,
            name=t.name,
            subdomain=t.subdomain,
            status=t.status,
            idle=age(t.waited),
            current_step=t.current_step,
            last_error=t.last_error,
            workflow_id=t.workflow_id,
            ui_url=workflow_ui_url(t.workflow_id) if t.workflow_id else "",
            action=actions.get(t.status, ""),
        )
        for t in tenants[:ROW_LIMIT]
    ]
    total = sum(counts.values())
    by_status = ", ".join(
        f"{counts.get(s, 0)} {s}"
        for s in (TenantStatus.FAILED, TenantStatus.PROVISIONING, TenantStatus.DELETING)
    )
    return Section(
        key="tenants",
        title="Tenants failed or stuck",
        count=total,
        rows=rows,
        summary=f"{by_status} (stuck: no progress for {age(threshold)})",
        more=total > len(rows),
    )


# --- onboarding, from Temporal ---------------------------------------------------------------


@dataclass
class OnboardingRow:
    workflow_id: str
    run_id: str
    closed: datetime | None
    user_pk: uuid.UUID | None
    email: str
    verified: bool
    ui_url: str


def failed_onboarding_query() -> str:
    return f'WorkflowType="{workflow_type(UserOnboardingWorkflow)}" AND ExecutionStatus="Failed"'


async def _failed_onboarding_runs(limit: int, within: float) -> list:
    # One bound for the connect and the query: with Temporal down the page waits this long
    # at most. The shared client reconnects by itself once Temporal is back.
    async with asyncio.timeout(within):
        client = await temporal_client.shared()
        return [
            run
            async for run in client.list_workflows(
                failed_onboarding_query(),
                limit=limit,
                page_size=limit,
                rpc_timeout=timedelta(seconds=within),
            )
        ]


def onboarding_section() -> Section:
    """Onboarding runs that failed (an email step that gave up, say), from one visibility
    query. Temporal unreachable or slow: the section says so and the page still loads."""
    try:
        runs = async_to_sync(_failed_onboarding_runs)(
            ROW_LIMIT + 1, settings.OPERATIONS_TEMPORAL_TIMEOUT
        )
    except Exception as exc:  # any failure of the query: the page must still load
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        logger.warning("operations page: failed onboarding runs not read (%s)", reason)
        return Section(
            key="onboarding",
            title="Onboarding runs that failed",
            count=None,
            unavailable=f"Temporal is unavailable ({reason}). The other sections come from "
            "the database and are current.",
        )
    more = len(runs) > ROW_LIMIT
    runs = runs[:ROW_LIMIT]
    prefix = onboarding_workflow_id("")
    user_ids = {}
    for run in runs:
        try:
            user_ids[run.id] = uuid.UUID(run.id.removeprefix(prefix))
        except ValueError:  # an id of another shape (started by hand): shown, no user
            continue
    users = User.objects.in_bulk(set(user_ids.values()))
    rows = []
    for run in runs:
        user = users.get(user_ids.get(run.id))
        rows.append(
            OnboardingRow(
                workflow_id=run.id,
                run_id=run.run_id,
                closed=run.close_time,
                user_pk=user.pk if user else None,
                email=user.email if user else "",
                verified=bool(user and user.email_verified_at),
                ui_url=workflow_ui_url(run.id, run.run_id),
            )
        )
    return Section(
        key="onboarding",
        title="Onboarding runs that failed",
        count=len(rows),
        rows=rows,
        summary="Runs Temporal still keeps (its namespace retention).",
        more=more,
        at_least=more,
    )


@dataclass
class FleetRow:
    pk: str
    status: str
    is_open: bool
    done: int
    total: int
    migrated: int
    current: int
    skipped: int
    failed: int
    ui_url: str
    workflow_id: str
    failures: list  # (tenant pk, schema, migration, first line of the error)


def fleet_section() -> Section:
    """The current fleet run (the latest), with its progress and failed tenants."""
    from tenants.fleet import fleet_run_latest, fleet_run_summary

    run = fleet_run_latest()
    if run is None:
        return Section("fleet", "Fleet migration", 0, summary="No fleet run yet.")
    summary = fleet_run_summary(run)
    failures = [
        (f.tenant_id, f.schema_name, f.migration, (f.error.splitlines() or [""])[0])
        for f in run.failures.all()[:ROW_LIMIT]
    ]
    row = FleetRow(
        pk=run.pk,
        status=run.status,
        is_open=run.is_open,
        done=summary["done"],
        total=summary["total"],
        migrated=summary["migrated"],
        current=summary["current"],
        skipped=summary["skipped"],
        failed=summary["failed"],
        ui_url=workflow_ui_url(run.workflow_id),
        workflow_id=run.workflow_id,
        failures=failures,
    )
    attention = summary["failed"] + (1 if run.is_open else 0)
    return Section(
        "fleet",
        "Fleet migration",
        attention,
        rows=[row],
        more=summary["failed"] > ROW_LIMIT,
        summary=f"Run {run.pk}: {run.get_status_display().lower()}, {summary['done']} of "
        f"{summary['total']} tenants reached.",
    )


# --- the page --------------------------------------------------------------------------------

# (permission needed to see it, the function that reads it), in page order.
SECTIONS: list[tuple[str, Callable[[], Section]]] = [
    ("orchestration.view_outboxentry", outbox_section),
    ("tenants.view_tenant", tenants_section),
    ("accounts.view_user", onboarding_section),
    ("tenants.view_fleetrun", fleet_section),
]


def sections_for(user) -> list[Section]:
    """The sections ``user`` may see, read now; nothing is read for the others."""
    return [read() for permission, read in SECTIONS if user.has_perm(permission)]
