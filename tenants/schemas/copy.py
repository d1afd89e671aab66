"""A schema copied, with its rows, from one tenant database to another.

The way ``pg_restore`` loads a dump, on two connections: the target gets the schema's
definitions before its data (``pg_dump --section=pre-data``: types, tables, sequences), then
every table's rows streamed with ``COPY … (FORMAT binary)`` straight from the source, then
the sequences' positions, then what follows the data (``--section=post-data``: primary keys,
indexes, constraints, foreign keys), all in one transaction on the target: the copy appears
whole or not at all. On the source, one transaction locks the schema's tables against writes
(``EXCLUSIVE``: reads go on) and reads them all from one snapshot.

Scripts from ``pg_dump`` are run as statements less their session settings, and rows cross
as COPY's binary format: a newer ``pg_dump`` (the bundled one) and an older server on either
side work together, which ``pg_restore`` of a newer archive into an older server does not.
"""

from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from core.db import libpq_params
from tenants.schemas.snapshot import find_pg_dump, run_pg_dump, without_session_setup
from tenants.validators import validate_schema_name

# How long the source waits for a writer still in a transaction to let go of a table (ms).
LOCK_TIMEOUT_MS = 10_000


class CopyUnavailable(Exception):
    """No ``pg_dump`` to read the schema's definitions with."""


def copy_schema(name: str, *, source: str, target: str) -> dict[str, int]:
    """Copy schema ``name`` from database ``source`` to ``target``, where it must not exist;
    returns ``{table: rows copied}``."""
    validate_schema_name(name)
    pg_dump = find_pg_dump()
    if pg_dump is None:
        raise CopyUnavailable("no pg_dump found (PG_DUMP_PATH): a schema cannot be copied")
    with ThreadPoolExecutor(2) as both:  # two pg_dump processes at once
        before, after = both.map(
            lambda part: without_session_setup(
                run_pg_dump(pg_dump, source, ["--schema", name, "--section", part])
            ),
            ["pre-data", "post-data"],
        )
    copied = {}
    with (
        psycopg.connect(**libpq_params(source)) as reader,
        psycopg.connect(**libpq_params(target)) as writer,
    ):
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        reader.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT_MS)))
        tables = relations(reader, name, "rp")
        if tables:
            locked = sql.SQL(", ").join(sql.Identifier(name, table) for table in tables)
            reader.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(locked))
        with writer.transaction():
            writer.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            for statement in before:
                writer.execute(statement)
            for table in tables:
                copied[table] = _copy_rows(reader, writer, name, table)
            for sequence in relations(reader, name, "S"):
                _copy_position(reader, writer, name, sequence)
            for statement in after:
                writer.execute(statement)
        reader.rollback()
    return copied


def relations(conn: psycopg.Connection, schema: str, kinds: str) -> list[str]:
    """The names of ``schema``'s relations of ``kinds`` (pg_class.relkind letters)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = ANY(%s) ORDER BY c.relname",
        [schema, list(kinds)],
    )
    return [row[0] for row in rows.fetchall()]


def _copy_rows(reader, writer, schema: str, table: str) -> int:
    name = sql.Identifier(schema, table)
    out = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(name)
    into = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(name)
    with reader.cursor().copy(out) as source, writer.cursor() as cursor:
        with cursor.copy(into) as target:
            for chunk in source:
                target.write(chunk)
        return cursor.rowcount


def _copy_position(reader, writer, schema: str, sequence: str) -> None:
    name = sql.Identifier(schema, sequence)
    last, called = reader.execute(
        sql.SQL("SELECT last_value, is_called FROM {}").format(name)
    ).fetchone()
    writer.execute("SELECT setval(%s::regclass, %s, %s)", [name.as_string(writer), last, called])
