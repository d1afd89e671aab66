"""Which migrations the code defines and which a schema records: the checks that decide
whether a schema is behind, and where a failed migration run stopped."""

import contextlib
import functools
import hashlib
import sys
from pathlib import Path

from django.db import ProgrammingError, transaction
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from tenants.databases import schema_connection, schema_database


@functools.cache
def migration_digests() -> dict[str, str]:
    """``app.name`` -> sha256 (16 hex digits) of its file, for every migration the code
    defines, in the order ``migrate`` applies them. Cached per process: the code (and so its
    migrations) does not change while it runs."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    plan = dict.fromkeys(
        node
        for leaf in sorted(loader.graph.leaf_nodes())
        for node in loader.graph.forwards_plan(leaf)
    )
    digests = {}
    for app, name in plan:
        migration = loader.graph.nodes[app, name]
        path = getattr(sys.modules[type(migration).__module__], "__file__", None)
        content = Path(path).read_bytes() if path else b""
        digests[f"{app}.{name}"] = hashlib.sha256(content).hexdigest()[:16]
    return digests


def migration_state() -> list[str]:
    """Every migration the code defines, as ``app.name``, sorted: what a current schema
    records in its ``django_migrations``."""
    return sorted(migration_digests())


def migration_fingerprint() -> list[str]:
    """``migration_state()`` with each file's digest, ``app.name@digest``: what a stored
    snapshot must have been taken at to be used (so a migration edited in place makes it
    stale too)."""
    return [f"{key}@{digest}" for key, digest in sorted(migration_digests().items())]


def recorded_migrations(name: str) -> set[str] | None:
    """The migrations schema ``name`` records as applied, as ``app.name``; None when it has
    no ``django_migrations`` table (or does not exist)."""
    query = sql.SQL("SELECT app || '.' || name FROM {}.django_migrations")
    # In autocommit a failed SELECT leaves nothing behind; in a caller's transaction it
    # would abort it, so there it runs in a savepoint.
    guard = (
        transaction.atomic(using=schema_database())
        if schema_connection().in_atomic_block
        else contextlib.nullcontext()
    )
    try:
        with guard, schema_connection().cursor() as cursor:
            cursor.execute(query.format(sql.Identifier(name)))
            return {row[0] for row in cursor.fetchall()}
    except ProgrammingError:
        return None


def first_unapplied(name: str) -> str:
    """The first migration (in ``migrate``'s order) schema ``name`` does not record: the one a
    failed migration run stopped at. ``""`` when it records them all."""
    recorded = recorded_migrations(name) or set()
    return next((key for key in migration_digests() if key not in recorded), "")


def schemas_behind(names: list[str]) -> set[str]:
    """Those of ``names`` that do not record every migration the code defines (a missing
    schema or ``django_migrations`` table included). Two queries however many names: one
    finds which have the table, one counts their current rows in a single UNION ALL."""
    if not names:
        return set()
    state = migration_state()
    with schema_connection().cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
            "WHERE c.relname = 'django_migrations' AND c.relkind IN ('r', 'p') "
            "AND n.nspname = ANY(%s)",
            [list(names)],
        )
        with_table = [row[0] for row in cursor.fetchall()]
        current = set()
        if with_table:
            count = sql.SQL(
                "SELECT {}, count(DISTINCT app || '.' || name) FROM {}.django_migrations "
                "WHERE app || '.' || name = ANY(%(state)s)"
            )
            query = sql.SQL(" UNION ALL ").join(
                count.format(sql.Literal(n), sql.Identifier(n)) for n in with_table
            )
            cursor.execute(query, {"state": state})
            current = {name for name, n in cursor.fetchall() if n >= len(state)}
    return set(names) - current
