"""A new tenant schema at the code's migrations: from the stored template when it is usable,
else by running the migrations."""

from django.conf import settings
from psycopg import sql

from tenants.databases import schema_connection
from tenants.schemas.migrate import run_migrations
from tenants.schemas.parallel_build import build_from_template
from tenants.schemas.snapshot import usable_template
from tenants.validators import validate_schema_name

FROM_TEMPLATE = "template"
BY_MIGRATIONS = "migrations"
ALREADY_THERE = "exists"


def schema_exists(name: str) -> bool:
    with schema_connection().cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


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
    with schema_connection().cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
    run_migrations(name)
    return BY_MIGRATIONS


def create_from_template(name: str) -> bool:
    """Build schema ``name`` from the stored snapshot (``build_from_template``, on
    ``TENANT_SCHEMA_BUILD_CONNECTIONS``); False, and nothing done, when none is usable."""
    if (template := usable_template()) is None:
        return False
    build_from_template(template, name, connections=settings.TENANT_SCHEMA_BUILD_CONNECTIONS)
    return True
