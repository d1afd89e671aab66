"""Tenant schema creation: which path runs, that both paths make the same schema, the
snapshot's safety checks and migrate_schema's shortcut. Real PostgreSQL and pg_dump."""

import logging
import re

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from tenants.models import SchemaTemplate
from tenants.schemas import migrate
from tenants.schemas.create import ALREADY_THERE, BY_MIGRATIONS, FROM_TEMPLATE, create_schema
from tenants.schemas.migrate import migrate_schema
from tenants.schemas.migration_state import (
    migration_fingerprint,
    migration_state,
    recorded_migrations,
)
from tenants.schemas.snapshot import UnsafeSnapshot, name_independent, sync_template
from tenants.schemas.sql_statements import statements

TEMPLATE = settings.TENANT_TEMPLATE_SCHEMA


def q(name: str) -> str:
    return f'"{name}"'


@pytest.fixture
def template(transactional_db):
    """A current stored snapshot; objects a test adds to the template schema (named
    ``probe*``) are removed afterwards, and the snapshot re-taken."""
    stored = sync_template()
    assert stored is not None, "pg_dump is needed for these tests"
    yield stored
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP FUNCTION IF EXISTS {q(TEMPLATE)}.probe()")
        cursor.execute(f"DROP TABLE IF EXISTS {q(TEMPLATE)}.probe")
        cursor.execute(f"ALTER TABLE {q(TEMPLATE)}.workspace_project DROP COLUMN IF EXISTS probe")
    sync_template()


def execute(statement: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def search_path() -> str:
    return execute("SELECT current_setting('search_path')")[0][0]


# --- which path runs ------------------------------------------------------------------------


def test_a_current_snapshot_is_replayed_and_leaves_the_session_as_it_was(template, new_schema):
    name = new_schema()
    before = search_path()
    assert create_schema(name) == FROM_TEMPLATE
    assert search_path() == before  # the dump's set_config/SET lines were not replayed
    assert recorded_migrations(name) == set(migration_state())
    assert create_schema(name) == ALREADY_THERE


def test_without_a_stored_snapshot_the_schema_is_made_by_migrations(transactional_db, new_schema):
    SchemaTemplate.objects.all().delete()
    name = new_schema()
    assert create_schema(name) == BY_MIGRATIONS
    assert recorded_migrations(name) == set(migration_state())


def _drop_one(entries):
    return entries[1:]


def _add_one(entries):
    return sorted([*entries, "workspace.9999_not_in_the_code@0000000000000000"])


def _edit_one(entries):
    key = entries[-1].partition("@")[0]
    return [*entries[:-1], f"{key}@{'0' * 16}"]


@pytest.mark.parametrize(
    "change",
    [_drop_one, _add_one, _edit_one],
    ids=["migration-added-since", "migration-removed-since", "migration-edited-in-place"],
)
def test_a_stale_snapshot_falls_back_to_migrations(template, new_schema, change):
    assert template.migrations == migration_fingerprint()
    SchemaTemplate.objects.filter(pk=template.pk).update(migrations=change(template.migrations))
    name = new_schema()
    assert create_schema(name) == BY_MIGRATIONS
    assert recorded_migrations(name) == set(migration_state())


def test_a_migration_edited_in_place_makes_sync_rebuild_the_template(template, caplog):
    # The template as an older version of a migration left it (one more column), stored
    # with that version's digest; migrate alone would never re-run the recorded migration.
    execute(f"ALTER TABLE {q(TEMPLATE)}.workspace_project ADD COLUMN probe integer")
    SchemaTemplate.objects.filter(pk=template.pk).update(migrations=_edit_one(template.migrations))
    with caplog.at_level(logging.WARNING, logger="tenants.schemas.snapshot"):
        synced = sync_template()
    assert synced is not None
    assert synced.migrations == migration_fingerprint()
    assert "rebuilding" in caplog.text
    assert "probe" not in columns(TEMPLATE, "workspace_project")
    assert "probe integer" not in synced.script


# --- both paths make the same schema --------------------------------------------------------


def columns(schema: str, table: str) -> list[str]:
    rows = execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        [schema, table],
    )
    return [row[0] for row in rows]


def structure(schema: str) -> dict[str, list[tuple]]:
    """Tables, columns, sequences, indexes and constraints of ``schema``, its own name
    replaced by ``<schema>``."""
    queries = {
        "tables": "SELECT table_name, table_type FROM information_schema.tables"
        " WHERE table_schema = %(s)s",
        # Column order, not ordinal_position: a column dropped by a migration leaves a gap
        # in the numbering that a replayed dump does not have.
        "columns": "SELECT table_name, column_name, row_number() OVER"
        " (PARTITION BY table_name ORDER BY ordinal_position), data_type, udt_name,"
        " character_maximum_length, numeric_precision, numeric_scale, is_nullable,"
        " column_default, is_identity, identity_generation, identity_start,"
        " identity_increment, is_generated, generation_expression"
        " FROM information_schema.columns WHERE table_schema = %(s)s",
        "sequences": "SELECT sequence_name, data_type, start_value, minimum_value,"
        " maximum_value, increment, cycle_option FROM information_schema.sequences"
        " WHERE sequence_schema = %(s)s",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s",
        "constraints": "SELECT rel.relname, con.conname, con.contype, con.condeferrable,"
        " con.condeferred, con.convalidated, pg_get_constraintdef(con.oid)"
        " FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid"
        " JOIN pg_namespace ns ON ns.oid = con.connamespace WHERE ns.nspname = %(s)s",
    }
    name = re.compile(rf"\b{re.escape(schema)}\b")

    def normal(value):
        return name.sub("<schema>", value) if isinstance(value, str) else value

    return {
        what: sorted(tuple(map(normal, row)) for row in execute(query, {"s": schema}))
        for what, query in queries.items()
    }


def test_template_and_migrations_make_identical_schemas(template, new_schema):
    copied, migrated = new_schema(), new_schema()
    assert create_schema(copied) == FROM_TEMPLATE
    SchemaTemplate.objects.all().delete()
    assert create_schema(migrated) == BY_MIGRATIONS

    expected = structure(migrated)
    tables = {row[0] for row in expected["tables"]}
    assert {"django_migrations", "workspace_project", "workspace_task"} <= tables
    assert any(row[2] == "f" for row in expected["constraints"])  # the FK is compared too
    assert structure(copied) == expected
    assert recorded_migrations(copied) == recorded_migrations(migrated)


# --- the snapshot's safety ------------------------------------------------------------------


def test_a_dump_that_still_names_the_template_is_not_stored(template, new_schema, caplog):
    # A function's SET clause names the schema without a dot: the rewrite cannot see it,
    # and a tenant made from this dump would run the function against the template.
    execute(
        f"CREATE FUNCTION {q(TEMPLATE)}.probe() RETURNS integer LANGUAGE sql"
        f" SET search_path = {TEMPLATE} AS 'SELECT 1'"
    )
    with caplog.at_level(logging.WARNING, logger="tenants.schemas.snapshot"):
        assert sync_template() is None
    assert "still names the template schema" in caplog.text
    assert not SchemaTemplate.objects.exists()
    assert create_schema(new_schema()) == BY_MIGRATIONS


def test_a_stored_snapshot_that_names_the_template_is_not_used(template, new_schema, caplog):
    # A reference the rewrite missed (the view would read the template's table).
    leak = f"\nCREATE VIEW {SchemaTemplate.PLACEHOLDER}.probe AS SELECT * FROM {TEMPLATE}.django_migrations;"  # noqa: S608, E501
    SchemaTemplate.objects.filter(pk=template.pk).update(script=template.script + leak)
    name = new_schema()
    with caplog.at_level(logging.WARNING, logger="tenants.schemas.snapshot"):
        assert create_schema(name) == BY_MIGRATIONS
    assert "still names the template schema" in caplog.text
    assert "probe" not in {row[0] for row in structure(name)["tables"]}


TRICKY = """\
-- Name: probe; Type: FUNCTION
\\restrict abc
SET check_function_bodies = false;
CREATE FUNCTION s.f(a integer) RETURNS text LANGUAGE plpgsql AS $body$
BEGIN
-- a comment; inside the body
SET LOCAL work_mem = '1MB';

RETURN 'x;
\\not a meta-command' || $1;
END $body$;
/* a comment /* nested; */ between; statements */
INSERT INTO s.t VALUES (E'it\\'s; SET', 'doubled''; quote', 1), ("odd;""name", $$;$$);
SELECT 1 /* ; */;
\\unrestrict abc
"""


def test_statements_split_only_at_top_level_semicolons():
    assert list(statements(TRICKY)) == [
        "SET check_function_bodies = false;",
        TRICKY[TRICKY.index("CREATE FUNCTION") : TRICKY.index("END $body$;") + 11],
        TRICKY[TRICKY.index("INSERT INTO") : TRICKY.index("$$;$$);") + 7],
        "SELECT 1 /* ; */;",
    ]


def test_name_independent_rewrites_references_and_refuses_what_it_cannot():
    dump = 'SET x = 1;\nCREATE SCHEMA tpl;\nCREATE TABLE tpl.a (b int REFERENCES "tpl".c(d));'
    assert name_independent(dump, "tpl") == (
        "CREATE TABLE __tenant_schema__.a (b int REFERENCES __tenant_schema__.c(d));"
    )
    assert name_independent("CREATE TABLE tpl.tpl_archive (i int);", "tpl") == (
        "CREATE TABLE __tenant_schema__.tpl_archive (i int);"
    )
    for unsafe in [
        "CREATE FUNCTION tpl.f() RETURNS int LANGUAGE sql SET search_path = tpl AS 'SELECT 1';",
        "CREATE VIEW tpl.v AS SELECT 'TPL' AS x;",
        "CREATE TABLE tpl.a (note text DEFAULT '__tenant_schema__');",
    ]:
        with pytest.raises(UnsafeSnapshot):
            name_independent(unsafe, "tpl")


def test_lines_inside_bodies_and_literals_survive_the_snapshot(template, new_schema):
    body = "\nBEGIN\n-- kept\nSET LOCAL work_mem = '1MB';\n\nRETURN '\n\\kept too\n';\nEND\n"
    default = "\n-- not a comment\nSET not a statement\n\n\\not a meta-command\n"
    execute(
        f"CREATE FUNCTION {q(TEMPLATE)}.probe() RETURNS text LANGUAGE plpgsql"
        f" AS $probe${body}$probe$"
    )
    execute(f"CREATE TABLE {q(TEMPLATE)}.probe (note text DEFAULT %s)", [default])
    assert sync_template() is not None
    name = new_schema()
    assert create_schema(name) == FROM_TEMPLATE

    def probe(schema):
        source = execute(
            "SELECT prosrc FROM pg_proc WHERE oid = %s::regproc", [f"{q(schema)}.probe"]
        )
        insert = sql.SQL("INSERT INTO {}.probe DEFAULT VALUES RETURNING note")
        fill = execute(insert.format(sql.Identifier(schema)))
        return source[0][0], fill[0][0]

    assert probe(name) == (body, default) == probe(TEMPLATE)


# --- migrate_schema -------------------------------------------------------------------------


@pytest.fixture
def migrate_calls(monkeypatch):
    """The (args, options) of every call_command from tenants.schemas.migrate; the calls
    still run."""
    calls = []
    real = migrate.call_command

    def spy(*args, **options):
        calls.append((args, options))
        return real(*args, **options)

    monkeypatch.setattr(migrate, "call_command", spy)
    return calls


def test_migrate_schema_of_a_current_schema_is_one_select(template, new_schema, migrate_calls):
    name = new_schema()
    create_schema(name)
    with CaptureQueriesContext(connection) as queries:
        migrate_schema(name)
    assert migrate_calls == []
    assert len(queries) == 1, [query["sql"] for query in queries]


def test_migrate_schema_applies_a_missing_migration(template, new_schema, migrate_calls):
    name = new_schema()
    create_schema(name)
    execute(f"DROP TABLE {q(name)}.workspace_task, {q(name)}.workspace_project")
    execute(f"DROP TABLE {q(name)}.workspace_setting")
    delete = sql.SQL("DELETE FROM {}.django_migrations WHERE app = 'workspace'")
    execute(delete.format(sql.Identifier(name)))

    migrate_schema(name)
    assert [args for args, _ in migrate_calls] == [("migrate_schemas",)]
    assert migrate_calls[0][1]["schema_name"] == name
    assert recorded_migrations(name) == set(migration_state())
    assert columns(name, "workspace_task")
    assert search_path().split(",")[0].strip() == "public"


def test_migrate_schema_finishes_an_empty_schema(transactional_db, new_schema, migrate_calls):
    name = new_schema()  # a crash between CREATE SCHEMA and the migrations leaves this
    execute(f"CREATE SCHEMA {q(name)}")
    assert recorded_migrations(name) is None
    migrate_schema(name)
    assert len(migrate_calls) == 1
    assert recorded_migrations(name) == set(migration_state())


def test_a_schemas_recorder_asks_for_its_table_by_name_not_by_listing_the_catalog(
    template, new_schema
):
    """Django's recorder lists every visible table (all of pg_class) to find
    django_migrations: a cost that grows with the tenants. The schema's recorder asks for
    that one table, once it is found."""
    name = new_schema()
    create_schema(name)
    recorder = migrate.SchemaRecorder(connection, name)
    with CaptureQueriesContext(connection) as queries:
        assert recorder.has_table()
        assert recorder.has_table()
    assert len(queries) == 1
    assert "to_regclass" in queries[0]["sql"]
    assert "pg_class" not in queries[0]["sql"]
    assert not migrate.SchemaRecorder(connection, new_schema()).has_table()
