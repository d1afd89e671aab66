"""One schema brought to the code's migrations: in this process when the plan creates or
deletes no model, else by ``migrate_schemas``."""

import threading

from django.conf import settings
from django.core.management import call_command
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import CreateModel, DeleteModel
from django.db.migrations.recorder import MigrationRecorder
from django_tenants.signals import schema_migrated, schema_pre_migration

from tenants.databases import schema_connection, schema_database
from tenants.schemas.lock import schema_lock
from tenants.schemas.migration_state import (
    migration_fingerprint,
    migration_state,
    recorded_migrations,
)
from tenants.validators import validate_schema_name


def migrate_schema(name: str) -> bool:
    """Apply outstanding migrations to schema ``name``; returns whether there were any.
    Idempotent, safe to retry, and never run twice at once on one schema (``schema_lock``).

    A schema that records every migration the code defines costs one SELECT: django-tenants'
    ``migrate_schemas`` loads the migration graph even when it has nothing to apply, and
    provisioning runs this step after every creation. Rows for migrations the code no longer
    has do not count, as for ``migrate`` itself.
    """
    if name != settings.TENANT_TEMPLATE_SCHEMA:
        validate_schema_name(name)
    if _is_current(name):
        return False
    with schema_lock(name):
        if _is_current(name):  # migrated by another process while this one waited
            return False
        run_migrations(name)
    return True


def _is_current(name: str) -> bool:
    recorded = recorded_migrations(name)
    return recorded is not None and recorded.issuperset(migration_state())


def run_migrations(name: str) -> None:
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
    schema_connection().set_schema(name, include_public=False)
    try:
        recorder = SchemaRecorder(schema_connection(), name)  # this schema's table
        prepared = _prepared_plan(frozenset(recorder.applied_migrations()))
        if prepared is None:
            return
        if prepared is _BY_COMMAND:
            call_command(
                "migrate_schemas",
                schema_name=name,
                database=schema_database(),
                interactive=False,
                verbosity=0,
            )
            return
        executor, plan, state = prepared
        executor.recorder = recorder
        schema_pre_migration.send(run_migrations, schema_name=name)
        state = state.clone()
        for migration, _ in plan:
            state = executor.apply_migration(state, migration)
        schema_migrated.send(run_migrations, schema_name=name)
    finally:
        schema_connection().set_schema_to_public()


class SchemaRecorder(MigrationRecorder):
    """The recorder of schema ``name``'s ``django_migrations``, which asks whether that table
    exists by its name: Django's recorder lists every table visible on the connection, a
    scan of the whole ``pg_class`` that grows with the number of tenants (a quarter of a
    second each at 10,000 tenants; docs/scale.md)."""

    def __init__(self, connection, name: str) -> None:
        super().__init__(connection)
        self.schema, self.found = name, False

    def has_table(self) -> bool:
        if not self.found:  # once there, it stays: asked again only until it is
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT to_regclass(quote_ident(%s) || '.' || quote_ident(%s))",
                    [self.schema, self.Migration._meta.db_table],
                )
                self.found = cursor.fetchone()[0] is not None
        return self.found


_BY_COMMAND = object()
_plans = threading.local()


def _prepared_plan(applied: frozenset):
    """For a schema that records ``applied``: None (nothing to apply), ``_BY_COMMAND`` (a
    plan that creates or deletes models), or ``(executor, plan, rendered state before the
    plan)``, worked out in the active schema once per thread and pair of migration sets.
    The state is never applied to itself: callers apply migrations to a clone."""
    key = (schema_database(), applied, tuple(migration_fingerprint()))
    cache = _plans.__dict__.setdefault("by_key", {})
    if key not in cache:
        if len(cache) >= 8:  # a handful of distinct pasts at most; never grow without end
            cache.clear()
        executor = MigrationExecutor(schema_connection())
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
