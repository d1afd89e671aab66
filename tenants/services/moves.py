"""Moving a tenant's schema to another tenant database (``TENANT_DATABASES``).

``tenant_move_request`` records the move (``Tenant.move_to``) and sends
``tenant_move_requested``; the move run (``TenantMoveWorkflow``) then takes the steps below,
each idempotent:

1. ``tenant_move_hold``: an active tenant is suspended with reason ``moving``: its hosts
   answer 403 and its tasks wait, so nothing writes to its schema (a suspended one is
   already held and stays suspended for its own reason).
2. ``tenant_move_copy``: the schema is copied into the target database
   (``tenants.schemas.copy``: its definitions by ``pg_dump``, its rows by ``COPY``, in one
   transaction there), the source's tables locked against writes meanwhile: a write begun
   before the hold finishes first and is copied, or waits for the lock (a request is cut off
   by its ``DATABASE_REQUEST_TIMEOUT``) and, landing after the copy, fails the verification.
3. ``tenant_move_verify``: every table's row count and checksum (the sum of its rows' 64-bit
   hashes) match on both sides, or the move fails.
4. ``tenant_move_switch``: ``Tenant.database`` becomes the target and the hold ends, in one
   transaction; every request, activity and task reads the tenant's database from its row,
   so the next ones go to the copy. The old schema is kept for ``TENANT_MOVE_DROP_AFTER``.
5. ``tenant_move_drop_old``: the old schema is dropped.

A failure or a cancel before the switch undoes: the copy is dropped (``tenant_move_drop_copy``)
and the hold ends (``tenant_move_release``): the tenant is where it was, serving.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from psycopg import sql

from core.db import libpq_params
from tenants import signals
from tenants.databases import on_database
from tenants.models import LIVE, SuspensionReason, Tenant, TenantStatus
from tenants.schemas.copy import copy_schema, relations
from tenants.schemas.create import schema_exists
from tenants.schemas.drop import drop_schema
from tenants.services import tenant_reactivate, tenant_suspend

logger = logging.getLogger(__name__)


class MoveRefused(Exception):
    """A move that cannot be made now; the message says why."""


class MoveMismatch(Exception):
    """The copy differs from the schema it was copied from."""


def tenant_move_request(*, tenant: Tenant, to: str, actor=None) -> Tenant:
    """Ask for ``tenant``'s schema to be moved to database ``to``. ``ValidationError`` on
    ``to`` when it is not a tenant database, or is where the tenant already is;
    ``MoveRefused`` when the tenant is not active or suspended, a move is under way, or the
    old schema of the last one is not dropped yet. One transaction, under the tenant's row
    lock; sends ``tenant_move_requested`` with the move's number."""
    if to not in settings.TENANT_DATABASES:
        known = ", ".join(settings.TENANT_DATABASES)
        raise ValidationError({"to": [f"{to!r} is not a tenant database ({known})."]})
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.database == to:
            raise ValidationError({"to": [f"Tenant {locked.pk} is already in {to!r}."]})
        if locked.status not in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
            raise MoveRefused(
                f"Tenant {locked.pk} is {locked.status}: only an active or "
                "suspended tenant is moved."
            )
        if locked.move_to:
            raise MoveRefused(f"Tenant {locked.pk} is being moved to {locked.move_to!r}.")
        if locked.moved_from:
            raise MoveRefused(
                f"Tenant {locked.pk}'s old schema in {locked.moved_from!r} is dropped at "
                f"{locked.move_drop_at:%Y-%m-%d %H:%M:%S} UTC; move it again after that."
            )
        locked.move_to = to
        locked.moves += 1
        locked.last_error = ""
        locked.save(update_fields=["move_to", "moves", "last_error", "updated_at"])
        signals.tenant_move_requested.send(
            sender=Tenant, tenant=locked, to=to, number=locked.moves, actor=actor
        )
    logger.info("tenant %s: move %d to %s requested", locked.pk, locked.moves, to)
    return locked


def _moving(tenant_id) -> Tenant:
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    if not tenant.move_to:
        raise MoveRefused(f"Tenant {tenant_id} has no move under way.")
    return tenant


def tenant_move_hold(*, tenant_id) -> None:
    """Hold the tenant's writes: an active tenant is suspended with reason ``moving``."""
    with transaction.atomic():
        tenant = _moving(tenant_id)
        if tenant.status == TenantStatus.ACTIVE:
            tenant_suspend(tenant=tenant, reason=SuspensionReason.MOVING)
        elif tenant.status not in LIVE:
            raise MoveRefused(f"Tenant {tenant_id} is {tenant.status}: it is not moved.")


def tenant_move_release(*, tenant_id) -> None:
    """Undo of the hold: the move is abandoned (``move_to`` cleared) and a suspension for
    ``moving`` ends. Idempotent; nothing is done once the tenant was switched."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        _end_hold(tenant)
        if tenant.move_to and tenant.move_to != tenant.database:
            tenant.move_to = ""
            tenant.save(update_fields=["move_to", "updated_at"])


def _end_hold(tenant: Tenant) -> None:
    """A suspension for ``moving`` ends (the tenant's other fields are left as they are)."""
    if tenant.status == TenantStatus.SUSPENDED and tenant.suspension_reason == (
        SuspensionReason.MOVING
    ):
        tenant_reactivate(tenant=tenant, for_move=True)


def tenant_move_copy(*, tenant_id) -> str:
    """Copy the tenant's schema into the move's target database (replacing what an earlier
    attempt left there); returns the target."""
    tenant = Tenant.objects.get(pk=tenant_id)
    if not tenant.move_to:
        raise MoveRefused(f"Tenant {tenant_id} has no move under way.")
    source, target, name = tenant.database, tenant.move_to, tenant.schema_name
    with on_database(target):
        drop_schema(name)  # an earlier attempt's copy: the source is what counts
    copied = copy_schema(name, source=source, target=target)
    logger.info(
        "tenant %s: schema %s copied from %s to %s (%d rows)",
        tenant_id,
        name,
        source,
        target,
        sum(copied.values()),
    )
    return target


def tenant_move_verify(*, tenant_id) -> dict[str, int]:
    """Compare every table of the tenant's schema in its database with the copy in the
    move's target: row counts and checksums. Returns ``{table: rows}``; ``MoveMismatch``
    names the tables that differ."""
    tenant = Tenant.objects.get(pk=tenant_id)
    if not tenant.move_to:
        raise MoveRefused(f"Tenant {tenant_id} has no move under way.")
    name = tenant.schema_name
    with ThreadPoolExecutor(2) as both:  # each side on its own server, at once
        source, copy = both.map(_fingerprints, [tenant.database, tenant.move_to], [name, name])
    if differ := sorted(t for t in source.keys() | copy.keys() if source.get(t) != copy.get(t)):
        raise MoveMismatch(
            f"the copy of {name} in {tenant.move_to!r} differs in {', '.join(differ)}"
        )
    return {table: rows for table, (rows, _) in source.items()}


def _fingerprints(database: str, schema: str) -> dict[str, tuple[int, str]]:
    """{table: (rows, checksum)} of ``schema`` in ``database``. The checksum adds up each
    row's 64-bit hash (``hashtextextended`` of the row as text): it does not depend on the
    rows' order, needs no sort, and costs a fraction of an md5 per row."""
    found = {}
    with psycopg.connect(**libpq_params(database), autocommit=True) as conn:
        for table in relations(conn, schema, "rp"):
            query = sql.SQL(
                "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text "
                "FROM {} t"
            ).format(sql.Identifier(schema, table))
            rows, checksum = conn.execute(query).fetchone()
            found[table] = (rows, checksum)
    return found


def tenant_move_drop_copy(*, tenant_id) -> bool:
    """Undo of the copy: the copy in the target is dropped, unless the tenant was switched
    to it. Returns whether there was one."""
    tenant = Tenant.objects.get(pk=tenant_id)
    if not tenant.move_to or tenant.move_to == tenant.database:
        return False
    with on_database(tenant.move_to):
        return drop_schema(tenant.schema_name)


def tenant_move_switch(*, tenant_id) -> float:
    """Point the tenant at its copy and end the hold, in one transaction; returns the
    seconds until the old schema is dropped. Idempotent: a switched tenant returns what is
    left of that wait. Refused when the tenant is no longer live (a purge got to it first)
    or the copy is missing."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if not tenant.move_to and tenant.moved_from:
            return _left(tenant)
        tenant = _moving(tenant_id)
        if tenant.status not in LIVE:
            raise MoveRefused(f"Tenant {tenant_id} is {tenant.status}: it is not switched.")
        with on_database(tenant.move_to):
            if not schema_exists(tenant.schema_name):
                raise MoveRefused(f"Tenant {tenant_id} has no copy in {tenant.move_to!r}.")
        _end_hold(tenant)
        tenant.moved_from, tenant.database = tenant.database, tenant.move_to
        tenant.move_to = ""
        tenant.move_drop_at = timezone.now() + timedelta(seconds=settings.TENANT_MOVE_DROP_AFTER)
        tenant.save(
            update_fields=["database", "moved_from", "move_to", "move_drop_at", "updated_at"]
        )
    logger.info("tenant %s: now in %s (was %s)", tenant_id, tenant.database, tenant.moved_from)
    return _left(tenant)


def _left(tenant: Tenant) -> float:
    return max(0.0, (tenant.move_drop_at - timezone.now()).total_seconds())


def tenant_move_drop_old(*, tenant_id) -> bool:
    """Drop the old schema a move left behind; returns whether there was one. Idempotent;
    never the tenant's own (a tenant moved back there keeps it)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        old = tenant.moved_from
        if not old:
            return False
        tenant.moved_from, tenant.move_drop_at = "", None
        tenant.save(update_fields=["moved_from", "move_drop_at", "updated_at"])
        if old == tenant.database:
            return False
        with on_database(old):
            dropped = drop_schema(tenant.schema_name)
    logger.info("tenant %s: old schema in %s dropped", tenant_id, old)
    return dropped


def tenant_move_failed(*, tenant_id, reason: str) -> None:
    """The final act of a move that failed or was cancelled (after its undos): the reason is
    the tenant's ``last_error``; the tenant is as it was before the move."""
    Tenant.objects.filter(pk=tenant_id).update(
        last_error=f"Move failed: {reason}"[:2000], updated_at=timezone.now()
    )
