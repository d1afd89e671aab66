"""Tenant data export: every table of the tenant's own schema, rows as JSON (one file per
table, zipped), put in ``STORAGES``' default storage; a signed download link that expires
after ``TENANT_EXPORT_LINK_TTL`` seconds. At most ``TENANT_EXPORTS_IN_FLIGHT`` exports of a
tenant are pending or running at once; a finished one is deleted ``TENANT_EXPORT_RETENTION``
seconds after it finished, and every one with the tenant.

The dump is a ``django.tasks`` task enqueued in the tenant's schema (``schema_context``), so
whatever backend ``TASKS`` names runs it there, on that tenant's queue; this module knows
nothing of the backend.
"""

import tempfile
import zipfile
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Q
from django.tasks import task
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import LIVE, ExportStatus, Tenant, TenantExport

_SIGNER_SALT = "tenants.exports.download"
# Rows are streamed from a server-side cursor this many at a time.
_FETCH = 2000


IN_FLIGHT = (ExportStatus.PENDING, ExportStatus.RUNNING)
# An export still pending or running this long after it was asked for has lost its task (a
# run terminated, a worker killed on its last attempt: the task's own attempts and timeouts
# end well before): it no longer counts against the limit, and the prune marks it failed.
ABANDONED_AFTER = timedelta(hours=1)
FINISHED = (ExportStatus.READY, ExportStatus.FAILED)


class ExportLinkExpired(Exception):
    pass


class TooManyExportsInFlight(Exception):
    """The tenant already has ``limit`` exports pending or running."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(
            f"At most {limit} exports of an organisation can be pending or running at once; "
            "ask again once one has finished."
        )


class TenantNotExportable(Exception):
    """Only a live (active or suspended) tenant has a schema whose data can be exported."""

    def __init__(self, tenant: Tenant):
        super().__init__(
            f"Tenant {tenant.pk} is {tenant.status}: only an active or suspended "
            "organisation's data can be exported."
        )


def export_file_name(export: TenantExport) -> str:
    return f"tenant-exports/{export.tenant_id}/{export.pk}.zip"


def export_request(*, tenant: Tenant, user) -> TenantExport:
    """Record an export of ``tenant`` asked for by ``user`` and enqueue the task that makes
    it, in one transaction (a rollback leaves neither). Only a live (active or suspended)
    tenant has data to export: otherwise ``TenantNotExportable``. With
    ``TENANT_EXPORTS_IN_FLIGHT`` of its exports already pending or running:
    ``TooManyExportsInFlight``, and nothing is written.

    The tenant's row is locked first, so concurrent requests for one tenant take turns and
    each counts the exports the ones before it wrote."""
    limit = settings.TENANT_EXPORTS_IN_FLIGHT
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update(no_key=True).get(pk=tenant.pk)
        if tenant.status not in LIVE:
            raise TenantNotExportable(tenant)
        in_flight = TenantExport.objects.filter(
            tenant=tenant, status__in=IN_FLIGHT, created_at__gte=timezone.now() - ABANDONED_AFTER
        )
        if in_flight.count() >= limit:
            raise TooManyExportsInFlight(limit)
        export = TenantExport.objects.create(tenant=tenant, requested_by=user)
        with tenant_context(tenant):  # the task runs for this tenant
            result = export_tenant_data.enqueue(str(export.pk))
        export.task_result_id = result.id
        export.save(update_fields=["task_result_id"])
    return export


@task
def export_tenant_data(export_id: str) -> dict:
    """Dump the active schema's tables into the export's zip; returns ``{table: rows}``.
    Runs in the tenant's schema. Safe to retry: a retry writes the file again."""
    schema = connection.schema_name
    export = TenantExport.objects.select_related("tenant").get(pk=export_id)
    if export.tenant.schema_name != schema:
        raise RuntimeError(f"export {export_id} belongs to another tenant's schema")
    TenantExport.objects.filter(pk=export_id).update(
        status=ExportStatus.RUNNING, error="", finished_at=None
    )
    try:
        with tempfile.TemporaryFile() as tmp:
            counts = _write_zip(tmp, schema, export.tenant.database)
            size = tmp.tell()
            tmp.seek(0)
            name = export_file_name(export)
            default_storage.delete(name)  # a retry replaces the file of the attempt before
            saved = default_storage.save(name, File(tmp))
    except Exception as exc:
        TenantExport.objects.filter(pk=export_id).update(
            status=ExportStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    if not TenantExport.objects.filter(pk=export_id).update(
        status=ExportStatus.READY,
        file_name=saved,
        size=size,
        tables=counts,
        finished_at=timezone.now(),
    ):
        # Its tenant's deletion removed the exports while this one was being written:
        # leave no file behind it.
        default_storage.delete(saved)
    return counts


def schema_tables(schema: str, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The ordinary tables of ``schema`` in database ``using``, by name."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
            [schema],
        )
        return [row[0] for row in cursor.fetchall()]


def _write_zip(out, schema: str, using: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    quote = connections[using].ops.quote_name
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in schema_tables(schema, using):
            rows = 0
            # A server-side cursor needs a transaction; the names come from the catalog.
            with (
                archive.open(f"{table}.json", "w") as member,
                transaction.atomic(using=using),
                connections[using].chunked_cursor() as cursor,
            ):
                sql = f"SELECT row_to_json(t)::text FROM {quote(schema)}.{quote(table)} t"  # noqa: S608
                cursor.execute(sql)
                member.write(b"[")
                while batch := cursor.fetchmany(_FETCH):
                    for (row,) in batch:
                        member.write(b"\n" if rows == 0 else b",\n")
                        member.write(row.encode())
                        rows += 1
                member.write(b"\n]\n")
            counts[table] = rows
    out.seek(0, 2)
    return counts


# --- the download link ---------------------------------------------------------------------


def download_token(export: TenantExport) -> tuple[str, datetime]:
    """A token naming the export, signed with ``SECRET_KEY`` and the time; and when it
    expires."""
    token = signing.TimestampSigner(salt=_SIGNER_SALT).sign(str(export.pk))
    ttl = timedelta(seconds=settings.TENANT_EXPORT_LINK_TTL)
    return token, timezone.now() + ttl


def export_for_token(token: str) -> TenantExport | None:
    """The ready export a token names, None for a token that is not ours (or an export
    gone); ``ExportLinkExpired`` once the token is older than ``TENANT_EXPORT_LINK_TTL``."""
    signer = signing.TimestampSigner(salt=_SIGNER_SALT)
    try:
        export_id = signer.unsign(token, max_age=settings.TENANT_EXPORT_LINK_TTL)
    except signing.SignatureExpired as exc:
        raise ExportLinkExpired(str(exc)) from exc
    except signing.BadSignature:
        return None
    return TenantExport.objects.filter(pk=export_id, status=ExportStatus.READY).first()


def tenant_exports_delete(*, tenant_id) -> int:
    """Delete every export of the tenant, file and row; returns how many rows there were.
    Idempotent (a missing file is fine)."""
    exports = list(TenantExport.objects.filter(tenant_id=tenant_id))
    for export in exports:
        default_storage.delete(export.file_name or export_file_name(export))
    TenantExport.objects.filter(pk__in=[e.pk for e in exports]).delete()
    return len(exports)


def tenant_exports_delete_stale(*, retention: timedelta, batch_size: int) -> int:
    """Delete up to ``batch_size`` exports, file and row, that finished (ready or failed)
    more than ``retention`` ago; returns how many. Pending and running ones are kept; those
    abandoned (``ABANDONED_AFTER``) are marked failed first, and go once they are old.
    Idempotent: a file already gone is fine, and a batch whose rows fail to go deletes its
    files again next time. Rows another transaction holds are left for the next run."""
    now = timezone.now()
    TenantExport.objects.filter(status__in=IN_FLIGHT, created_at__lt=now - ABANDONED_AFTER).update(
        status=ExportStatus.FAILED,
        error="The export did not finish: its task ended without it.",
        finished_at=now,
    )
    cutoff = now - retention
    stale = TenantExport.objects.filter(status__in=FINISHED).filter(
        Q(finished_at__lt=cutoff) | Q(finished_at=None, created_at__lt=cutoff)
    )
    with transaction.atomic():
        batch = list(
            stale.select_for_update(skip_locked=True)
            .order_by("created_at")
            .only("pk", "tenant_id", "file_name")[:batch_size]
        )
        for export in batch:
            default_storage.delete(export.file_name or export_file_name(export))
        return TenantExport.objects.filter(pk__in=[e.pk for e in batch]).delete()[0]
