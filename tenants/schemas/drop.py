"""A tenant schema dropped with everything in it."""

from psycopg import sql

from tenants.databases import schema_connection
from tenants.schemas.create import schema_exists
from tenants.schemas.lock import schema_lock
from tenants.validators import validate_schema_name


def drop_schema(name: str) -> bool:
    """Drop schema ``name`` and everything in it, if present. Returns whether it was there."""
    validate_schema_name(name)
    with schema_lock(name):  # never under a migration that is running
        existed = schema_exists(name)
        with schema_connection().cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    return existed
