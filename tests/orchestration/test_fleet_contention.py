"""A fleet schema whose migration times out fails alone: another connection holds a lock on
one tenant's table, the migration sets a small ``lock_timeout`` (or ``statement_timeout``),
and that schema is tried ``CONTENTION_ATTEMPTS`` times, then listed failed on the run with
its migration and error, while the rest of its chunk is migrated and the chunk's activity
is not retried. Real PostgreSQL, Temporal, workers and relay."""

import collections
import contextlib
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from psycopg import sql
from temporalio.client import Client

import tenants
from core.db import libpq_params
from tenants import fleet
from tenants.models import FleetRun, FleetStatus, Tenant, TenantStatus
from tenants.schemas.create import create_schema
from tenants.schemas.migration_state import migration_digests, schemas_behind
from tenants.schemas.snapshot import sync_template
from tests.factories import TenantFactory
from tests.kit import run_async, wait_until
from tests.workers import BackgroundWorker

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")

NOTE = "workspace.0002_project_note"
# The deploy: a column added to the table another connection holds locked, under a timeout
# of 100 ms set for the migration's own transaction.
MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workspace", "0001_initial")]
    operations = [
        migrations.RunSQL("SET LOCAL {setting} = '100ms'", migrations.RunSQL.noop),
        migrations.AddField("project", "note", models.CharField(max_length=9, null=True)),
    ]
"""
# What PostgreSQL says when each runs out.
TIMEOUTS = {"lock_timeout": "lock timeout", "statement_timeout": "statement timeout"}


@pytest.fixture
def deploy(owner, settings, tmp_path, monkeypatch):
    """``deploy(n, setting)``: ``n`` active tenants (sorted by schema) with their schemas at
    the code's migrations, then a deploy that adds ``MIGRATION`` under ``setting``. The test
    has a template schema of its own, which the run's start migrates; it is dropped after."""
    settings.TENANT_TEMPLATE_SCHEMA = f"tpl_{uuid.uuid4().hex[:12]}"

    def make(n: int, setting: str) -> list[Tenant]:
        sync_template()
        made = [TenantFactory(owner=owner, status=TenantStatus.ACTIVE) for _ in range(n)]
        for tenant in made:
            create_schema(tenant.schema_name)
        package = tmp_path / f"migrations_{uuid.uuid4().hex[:8]}"  # a fresh module each time
        shutil.copytree(
            Path(tenants.__file__).parent / "workspace" / "migrations",
            package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        (package / "0002_project_note.py").write_text(MIGRATION.format(setting=setting))
        monkeypatch.syspath_prepend(str(tmp_path))
        settings.MIGRATION_MODULES = {"workspace": package.name}
        migration_digests.cache_clear()
        return sorted(made, key=lambda tenant: tenant.schema_name)

    yield make
    migration_digests.cache_clear()
    with connection.cursor() as cursor:
        drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
        cursor.execute(drop.format(sql.Identifier(settings.TENANT_TEMPLATE_SCHEMA)))


@pytest.fixture
def tries(monkeypatch) -> collections.Counter:
    """How many times each schema's migration was tried (by the fleet, on any thread)."""
    counted = collections.Counter()
    real = fleet.migrate_schema

    def counting(name: str) -> bool:
        counted[name] += 1
        return real(name)

    monkeypatch.setattr(fleet, "migrate_schema", counting)
    return counted


@contextlib.contextmanager
def table_locked(schema: str):
    """``schema``'s ``workspace_project`` locked by another connection for the block."""
    with psycopg.connect(**libpq_params()) as other:
        lock = sql.SQL("LOCK TABLE {}.workspace_project IN ACCESS EXCLUSIVE MODE")
        other.execute(lock.format(sql.Identifier(schema)))
        yield


@pytest.mark.parametrize("setting", list(TIMEOUTS))
def test_a_schema_that_times_out_fails_alone_and_its_chunk_goes_on(deploy, tries, setting):
    first, locked, last = deploy(3, setting)
    ids = [str(t.pk) for t in (first, locked, last)]
    with table_locked(locked.schema_name):
        results = fleet.fleet_tenants_migrate(tenant_ids=ids)

    assert tries == {
        first.schema_name: 1,
        locked.schema_name: fleet.CONTENTION_ATTEMPTS,
        last.schema_name: 1,
    }
    assert results[ids[0]] == results[ids[2]] == {"outcome": fleet.MIGRATED}
    failed = results[ids[1]]
    assert (failed["outcome"], failed["migration"], failed["attempts"]) == (
        fleet.FAILED,
        NOTE,
        fleet.CONTENTION_ATTEMPTS,
    )
    assert TIMEOUTS[setting] in failed["error"]
    names = [t.schema_name for t in (first, locked, last)]
    assert schemas_behind(names) == {locked.schema_name}

    # Recorded on the run like any broken schema.
    with transaction.atomic():
        run, _ = fleet.fleet_run_request()
    fleet.fleet_run_started(run_id=run.pk)
    assert fleet.fleet_batch_recorded(
        run_id=run.pk, after="", last=last.schema_name, results=results
    )
    run.refresh_from_db()
    assert run.migrated == 2
    (failure,) = run.failures.all()
    assert (failure.tenant_id, failure.schema_name, failure.migration) == (
        locked.pk,
        locked.schema_name,
        NOTE,
    )
    assert TIMEOUTS[setting] in failure.error
    assert f"({fleet.CONTENTION_ATTEMPTS} attempts)" in failure.error


async def _chunk_attempts(address: str, workflow_id: str) -> list[int]:
    """The attempt each ``fleet_migrate_tenants`` activity of the run completed on."""
    client = await Client.connect(address)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    }
    return [
        started.attempt
        for event in history.events
        if event.HasField("activity_task_started_event_attributes")
        and scheduled[(started := event.activity_task_started_event_attributes).scheduled_event_id]
        == "fleet_migrate_tenants"
    ]


def test_a_fleet_run_lists_the_schema_that_timed_out_and_migrates_the_others(
    deploy, tries, temporal
):
    made = deploy(4, "lock_timeout")
    locked = made[1]
    with table_locked(locked.schema_name):
        with transaction.atomic():  # one chunk at a time: all four schemas in one chunk
            run, _ = fleet.fleet_run_request(concurrency=1)
        with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
            wait_until(
                lambda: not FleetRun.objects.get(pk=run.pk).is_open,
                timeout=60,
                what="the fleet run to end while the lock is held",
            )
    run.refresh_from_db()
    assert (run.status, run.migrated, run.current) == (FleetStatus.FAILED, 3, 0)
    (failure,) = run.failures.all()
    assert (failure.tenant_id, failure.migration) == (locked.pk, NOTE)
    assert "lock timeout" in failure.error
    assert tries[locked.schema_name] == fleet.CONTENTION_ATTEMPTS
    assert schemas_behind([t.schema_name for t in made]) == {locked.schema_name}
    # The one chunk completed on its first attempt: it was not tried again as a whole.
    assert run_async(_chunk_attempts(temporal, run.workflow_id)) == [1]
