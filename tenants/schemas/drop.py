"""A tenant schema dropped with everything in it."""

from django.db import connection
from psycopg import sql

from tenants.schemas.create import schema_exists
from tenants.schemas.lock import schema_lock
from tenants.validators import validate_schema_name


def drop_schema(name: str) -> bool:
    """Drop schema ``name`` and everything in it, if present. Returns whether it was there."""
    validate_schema_name(name)
    with schema_lock(name):  # never under a migration that is running
        existed = schema_exists(name)
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    return existed
