"""A warm pool of tenant schemas (``TENANT_SCHEMA_POOL_SIZE``).

Replaying the template takes longer the larger the tenant app; renaming a
schema that is already built is one catalog update, whatever its size (defaults,
sequences and foreign keys follow by OID). So the project keeps a few schemas built from the
template, named ``pool_<hex>`` and recorded in ``PoolSchema`` with the fingerprint of the
migrations they were built at, and provisioning claims one:

* **Atomic.** ``claim`` takes the oldest current row with ``FOR UPDATE SKIP LOCKED``,
  renames its schema to the tenant's and deletes the row, in one transaction: two
  concurrent provisionings never get the same schema (the second skips the locked row).
* **Never stale.** Only rows whose fingerprint is the code's are considered, and the
  schema's own ``django_migrations`` must record every migration the code defines (one
  SELECT); one that does not is dropped, never handed out. ``prune`` drops every row of
  another fingerprint (built by older code, or before a migration was edited); ``migrate``
  calls it, so a template change empties the pool and the next refill rebuilds it.
* **Invisible.** No tenant row or domain points at a pool schema, so nothing that lists
  tenants or their schemas (the API, the admin, ``migrate_schemas``) ever sees one.
* **Refilled in the background.** Each claim sends ``schema_pool_drawn``; orchestration
  starts a refill (``fill_one`` until the pool is full) on the jobs queue. Fills and prunes
  take one advisory lock, so concurrent refills never build past the size (a fill that finds
  it taken leaves the work to the refill holding it).

Several databases. Each open tenant database (``tenants.databases``) keeps a pool of its
own, of ``TENANT_SCHEMA_POOL_SIZE``: a claim takes from the pool of the database the tenant
is in (``on_database``); a fill builds in the first open database whose pool is short. The
rows live in ``default`` with the database they are in; a claim's row delete commits just
before its rename (and a fill's row just before its schema's rename), so a schema is never
renamed from or to a pool name without its row settled first: a crash between the two
leaves a row without its schema (dropped by the next claim that finds it) or a pool schema
without its row (dropped by ``prune`` as an orphan).

With ``TENANT_SCHEMA_POOL_SIZE = 0`` a claim returns at once without any SQL.
"""

import hashlib
import logging
import uuid

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg import sql

from core.db import libpq_params
from tenants import signals
from tenants.databases import (
    on_database,
    open_databases,
    schema_connection,
    schema_database,
    tenant_databases,
)
from tenants.models import PoolSchema
from tenants.schemas.migration_state import (
    migration_fingerprint,
    migration_state,
    recorded_migrations,
)
from tenants.schemas.quiet_build import build_quietly
from tenants.schemas.scratch import drop_build_debris, drop_scratch
from tenants.schemas.snapshot import usable_template
from tenants.validators import validate_schema_name

logger = logging.getLogger(__name__)

FROM_POOL = "pool"


def _lock_key(database: str) -> int:
    """pg_advisory_xact_lock key of the fills and prunes of ``database``'s pool."""
    digest = hashlib.blake2b(f"tenants.pool:{database}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


# Bounds the schemas one claim may discard as stale before falling back to the template.
_MAX_DISCARDS = 16


def pool_fingerprint() -> str:
    """The code's migrations (names and file digests) as one digest: a pool schema built at
    another one is stale."""
    joined = "\n".join(migration_fingerprint()).encode()
    return hashlib.sha256(joined).hexdigest()


def pool_size() -> int:
    return settings.TENANT_SCHEMA_POOL_SIZE


def claim(schema_name: str) -> str | None:
    """Rename a current pool schema of the database schema work is on (``on_database``) to
    ``schema_name``; returns the pool schema's old name, or None when that pool has none
    (the caller then builds the schema another way).

    Atomic across concurrent callers; a pool schema that is not at the code's migrations is
    dropped, never returned. ``schema_name`` must not exist yet.
    """
    if pool_size() < 1:
        return None
    validate_schema_name(schema_name)
    fingerprint = pool_fingerprint()
    database = schema_database()
    claimed = None
    with transaction.atomic(using=database), transaction.atomic():
        for _ in range(_MAX_DISCARDS):
            row = (
                PoolSchema.objects.select_for_update(skip_locked=True)
                .filter(fingerprint=fingerprint, database=database)
                .order_by("created_at", "name")
                .first()
            )
            if row is None:
                break
            if _current(row.name):
                claimed = row.name  # (delete() clears the primary key)
                _execute("ALTER SCHEMA {} RENAME TO {}", claimed, schema_name)
                row.delete()
                break
            logger.warning("pool schema %s is not at the current migrations: dropped", row.name)
            _execute("DROP SCHEMA IF EXISTS {} CASCADE", row.name)
            row.delete()
        signals.schema_pool_drawn.send(
            sender=PoolSchema, claimed=claimed, schema_name=schema_name, database=database
        )
    return claimed


def fill_one() -> str | None:
    """Build one pool schema in the first open database whose pool is short of
    ``TENANT_SCHEMA_POOL_SIZE``; returns its name, or None when every pool is full or being
    filled by another refill, or there is no usable template (provisioning then replays the
    template or runs migrations itself)."""
    for database in open_databases():
        with on_database(database):
            if (name := _fill_one()) is not None:
                return name
    return None


def _fill_one() -> str | None:
    """One pool schema built in the database schema work is on, if its pool is short.
    The schema is built quietly (``build_quietly``: in small commits, so the other
    connections keep their catalog caches), then renamed to its pool name in the transaction
    that records its row: a ``pool_`` schema and its row commit together."""
    built = None
    database = schema_database()
    try:
        with transaction.atomic(using=database), transaction.atomic():
            if not _lock(wait=False):
                return None  # another refill is filling the pool (it counts again after each)
            mine = PoolSchema.objects.filter(fingerprint=pool_fingerprint(), database=database)
            if mine.count() >= pool_size():
                return None
            template = usable_template()
            if template is None:
                logger.warning("no usable template snapshot: the schema pool is not filled")
                return None
            name = f"{PoolSchema.PREFIX}{uuid.uuid4().hex}"
            built = build_quietly(template)
            _execute("ALTER SCHEMA {} RENAME TO {}", built, name)
            PoolSchema.objects.create(name=name, fingerprint=pool_fingerprint(), database=database)
    except BaseException:
        if built is not None:  # built, but its rename rolled back
            drop_scratch(built)
        raise
    return name


def prune() -> list[str]:
    """Drop, in every tenant database, the pool schemas that must not be handed out, or are
    not wanted: those of another fingerprint, those past ``TENANT_SCHEMA_POOL_SIZE`` (newest
    first; all of a database closed to new tenants) and any ``pool_`` schema without its
    row; and the scratch schemas of schema builds a killed process left
    (``drop_build_debris``). Returns their names. Idempotent."""
    dropped = []
    for database in tenant_databases():
        with on_database(database):
            dropped += _prune(keep=pool_size() if database in open_databases() else 0)
    if dropped:
        logger.info("schema pool: dropped %s", ", ".join(dropped))
    return dropped


def _prune(*, keep: int) -> list[str]:
    database = schema_database()
    dropped = []
    with transaction.atomic(using=database), transaction.atomic():
        _lock()
        current = pool_fingerprint()
        rows = PoolSchema.objects.select_for_update(skip_locked=True).filter(database=database)
        stale = list(rows.exclude(fingerprint=current).values_list("name", flat=True))
        kept = rows.filter(fingerprint=current)
        excess = list(kept.order_by("-created_at", "-name").values_list("name", flat=True))
        excess = excess[: max(0, len(excess) - keep)]
        for name in stale + excess:
            _execute("DROP SCHEMA IF EXISTS {} CASCADE", name)
            PoolSchema.objects.filter(name=name).delete()
            dropped.append(name)
    # The schemas first, then the rows: a pool schema's row commits before its rename, so
    # one found here whose row commits meanwhile is never taken for debris.
    with schema_connection().cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            [PoolSchema.PREFIX.replace("_", r"\_") + "%"],
        )
        found = [row[0] for row in cursor.fetchall()]
    recorded = set(PoolSchema.objects.filter(name__in=found).values_list("name", flat=True))
    for name in found:
        if name not in recorded:
            _execute("DROP SCHEMA IF EXISTS {} CASCADE", name)
            dropped.append(name)
    with psycopg.connect(**libpq_params(database), autocommit=True) as side:
        dropped += drop_build_debris(side)  # a killed build's scratch schema
    return dropped


def _current(name: str) -> bool:
    recorded = recorded_migrations(name)
    return recorded is not None and recorded.issuperset(migration_state())


def _lock(*, wait: bool = True) -> bool:
    """The pool's advisory lock, until the transaction ends; without ``wait``, False when
    another transaction holds it."""
    key = [_lock_key(schema_database())]
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:  # the rows' database
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", key)
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", key)
        return cursor.fetchone()[0]


def _execute(statement: str, *names: str) -> None:
    for name in names:
        validate_schema_name(name)
    with schema_connection().cursor() as cursor:
        cursor.execute(sql.SQL(statement).format(*map(sql.Identifier, names)))
