"""Fleet migration end to end: real PostgreSQL, Temporal, workers and relay.

A schema is made *behind* the code's migrations as a deploy would leave it: the workspace
app's tables dropped and their migration's row deleted, so that migrating it creates them
again. A *broken* schema has the row deleted but keeps its tables: re-applying the migration
fails ("already exists"), as a schema hand-edited in production does.
"""

import json
import signal
import threading
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from tenants import fleet
from tenants.models import FleetRun, FleetStatus, Tenant, TenantStatus
from tenants.schemas.create import create_schema
from tenants.schemas.migrate import migrate_schema
from tenants.schemas.migration_state import migration_digests, schemas_behind
from tenants.schemas.snapshot import sync_template
from tests.factories import TenantFactory
from tests.kit import wait_until
from tests.workers import SHARDS, BackgroundWorker, runs_of

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")

WORKSPACE = "workspace.0001_initial"
WORKSPACE_TABLES = ["workspace_task", "workspace_project", "workspace_setting"]


def active_tenants(n: int, owner) -> list[Tenant]:
    sync_template()  # the flush of earlier tests removed the stored snapshot: replay is fast
    tenants = [TenantFactory(owner=owner, status=TenantStatus.ACTIVE) for _ in range(n)]
    for tenant in tenants:
        create_schema(tenant.schema_name)
    return tenants


def forget_workspace(schema: str, *, drop_tables: bool = True) -> None:
    with connection.cursor() as cursor:
        if drop_tables:
            for table in WORKSPACE_TABLES:
                cursor.execute(
                    sql.SQL("DROP TABLE {}.{}").format(*map(sql.Identifier, (schema, table)))
                )
        cursor.execute(
            sql.SQL("DELETE FROM {}.django_migrations WHERE app = 'workspace'").format(
                sql.Identifier(schema)
            )
        )


def workspace_rows(schema: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {}.django_migrations WHERE app = 'workspace'").format(
                sql.Identifier(schema)
            )
        )
        return cursor.fetchone()[0]


def request_run(**kwargs) -> FleetRun:
    with transaction.atomic():
        run, created = fleet.fleet_run_request(**kwargs)
    assert created
    return run


def finished(run: FleetRun, timeout: float = 120) -> FleetRun:
    def closed():
        run.refresh_from_db()
        return not run.is_open

    wait_until(closed, timeout=timeout, what=f"fleet run {run.pk} to end")
    return run


@pytest.fixture
def small_batches(settings):
    settings.FLEET_MIGRATION_BATCH_SIZE = 7
    settings.FLEET_MIGRATION_CONTINUE_AFTER = 14
    settings.FLEET_MIGRATION_CONCURRENCY = 4


def test_one_broken_schema_fails_alone_and_retry_failed_reruns_only_it(
    owner, temporal, small_batches
):
    tenants = active_tenants(48, owner)
    behind, broken = tenants[::4], tenants[5]
    for tenant in behind:
        forget_workspace(tenant.schema_name)
    forget_workspace(broken.schema_name, drop_tables=False)
    names = [t.schema_name for t in tenants]
    assert schemas_behind(names) == {t.schema_name for t in [*behind, broken]}

    run = request_run()
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        run = finished(run)
        # 48 tenants in batches of 7, continuing as new after 14: several runs, one id.
        assert len(runs_of(temporal, run.workflow_id)) >= 3
    summary = fleet.fleet_run_summary(run)
    assert summary == {
        **summary,
        "status": FleetStatus.FAILED,
        "total": 48,
        "migrated": 12,
        "current": 35,
        "skipped": 0,
        "failed": 1,
        "done": 48,
    }
    (failure,) = run.failures.all()
    assert (failure.tenant_id, failure.schema_name, failure.migration) == (
        broken.pk,
        broken.schema_name,
        WORKSPACE,
    )
    assert "already exists" in failure.error
    assert schemas_behind(names) == {broken.schema_name}
    assert all(workspace_rows(t.schema_name) == 1 for t in behind)

    with pytest.raises(CommandError, match=r"1 tenant schema\(s\) are behind"):
        call_command("migrate_fleet", "--status")

    forget_workspace(broken.schema_name)  # repaired by hand
    with transaction.atomic():
        run = fleet.fleet_run_retry_failed()
    assert run.workflow_id.startswith(f"{run.pk}-2-")
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        run = finished(run)
    assert run.status == FleetStatus.COMPLETED
    assert (run.migrated, run.failures.count()) == (13, 0)
    assert schemas_behind(names) == set()
    call_command("migrate_fleet", "--status")  # every tenant current: no error


def test_pause_holds_the_run_and_resume_finishes_it(owner, temporal, small_batches):
    tenants = active_tenants(30, owner)
    names = [t.schema_name for t in tenants]
    for name in names:
        forget_workspace(name)
    run = request_run(concurrency=1)
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        wait_until(
            lambda: FleetRun.objects.get(pk=run.pk).migrated >= 1,
            timeout=60,
            what="a first batch recorded",
        )
        call_command("migrate_fleet", "--pause")
        assert FleetRun.objects.get(pk=run.pk).status == FleetStatus.PAUSED

        def settled_while_paused() -> bool:  # the migration under way ends, no other begins
            before = len(schemas_behind(names))
            time.sleep(1)
            return len(schemas_behind(names)) == before

        wait_until(settled_while_paused, timeout=60, what="the paused run to hold still")
        assert len(schemas_behind(names)) > 0
        call_command("migrate_fleet", "--resume", "--wait", "--poll", "0.2")
    run.refresh_from_db()
    assert (run.status, run.migrated, run.current) == (FleetStatus.COMPLETED, 30, 0)
    assert schemas_behind(names) == set()


def test_a_tenant_provisioned_during_a_run_gets_the_current_schema(owner, temporal, small_batches):
    from tenants.services import tenant_request_provisioning
    from tests.workers import settled

    tenants = active_tenants(6, owner)
    for tenant in tenants:
        forget_workspace(tenant.schema_name)
    run = request_run(concurrency=1)
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        wait_until(
            lambda: FleetRun.objects.get(pk=run.pk).status == FleetStatus.RUNNING,
            timeout=60,
            what="the run to begin",
        )
        call_command("migrate_fleet", "--pause")
        newcomer = TenantFactory(owner=owner, subdomain="newcomer")
        tenant_request_provisioning(tenant_id=newcomer.pk)
        newcomer = settled(newcomer.pk, TenantStatus.ACTIVE, TenantStatus.FAILED)
        assert newcomer.status == TenantStatus.ACTIVE, newcomer.last_error
        assert schemas_behind([newcomer.schema_name]) == set()
        call_command("migrate_fleet", "--resume")
        run = finished(run)
    assert run.status == FleetStatus.COMPLETED
    assert run.migrated == 6  # the newcomer was never behind


def test_a_worker_killed_mid_run_resumes_and_migrates_nothing_twice(
    owner, start_worker, prefix, settings, small_batches
):
    settings.TEMPORAL_QUEUE_PREFIX, settings.TEMPORAL_QUEUE_SHARDS = prefix, SHARDS
    tenants = active_tenants(30, owner)
    for tenant in tenants:
        forget_workspace(tenant.schema_name)
    run = request_run(concurrency=2)
    first, _ = start_worker()
    wait_until(
        lambda: FleetRun.objects.get(pk=run.pk).migrated >= 4,
        timeout=120,
        what="some schemas migrated",
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    start_worker()
    run = finished(run, timeout=180)
    assert run.status == FleetStatus.COMPLETED, fleet.fleet_run_summary(run)
    assert (run.migrated, run.current, run.failures.count()) == (30, 0, 0)
    # Migrated once each: a second application of the migration would have failed.
    assert all(workspace_rows(t.schema_name) == 1 for t in tenants)


def test_a_schema_is_never_migrated_twice_at_once(owner):
    (tenant,) = active_tenants(1, owner)
    forget_workspace(tenant.schema_name)
    ran, errors = [], []

    def migrate():
        try:
            ran.append(migrate_schema(tenant.schema_name))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(ran) == [False, False, True]
    assert workspace_rows(tenant.schema_name) == 1
    # Released: migrate_schemas closes Django's connection midway, so a lock held on that
    # connection would stay with a pooled one.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7301"
        )
        assert cursor.fetchone()[0] == 0


def test_tenants_being_provisioned_or_deleted_are_left_alone(owner):
    (tenant,) = active_tenants(1, owner)
    forget_workspace(tenant.schema_name)
    Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.DELETING)
    assert fleet.fleet_tenant_migrate(tenant_id=str(tenant.pk)) == {"outcome": "skipped"}
    assert schemas_behind([tenant.schema_name]) == {tenant.schema_name}


def test_a_chunk_gives_way_to_a_provisioning_under_way(owner, settings):
    settings.FLEET_MIGRATION_GIVE_WAY = 60.0
    (tenant,) = active_tenants(1, owner)
    forget_workspace(tenant.schema_name)
    signup = TenantFactory(owner=owner, subdomain="signup", status=TenantStatus.PENDING)
    results = []

    def chunk():
        try:
            results.append(fleet.fleet_tenants_migrate(tenant_ids=[str(tenant.pk)]))
        finally:
            connection.close()

    worker = threading.Thread(target=chunk)
    worker.start()
    time.sleep(1)
    assert worker.is_alive()  # waiting: nothing migrated yet
    assert results == []
    assert schemas_behind([tenant.schema_name]) == {tenant.schema_name}
    Tenant.objects.filter(pk=signup.pk).update(status=TenantStatus.ACTIVE)
    worker.join(60)
    assert results == [{str(tenant.pk): {"outcome": "migrated"}}]


def test_a_chunk_does_not_wait_for_a_stale_provisioning_and_waits_a_bounded_time(
    owner, monkeypatch, settings
):
    tenants = active_tenants(2, owner)
    for tenant in tenants:
        forget_workspace(tenant.schema_name)
    stuck = TenantFactory(owner=owner, subdomain="stuck", status=TenantStatus.PROVISIONING)
    long_ago = timezone.now() - timedelta(seconds=fleet.PROVISIONING_FRESH + 1)
    Tenant.objects.filter(pk=stuck.pk).update(updated_at=long_ago)
    assert not fleet.provisioning_under_way()
    slept = []
    monkeypatch.setattr(fleet.time, "sleep", slept.append)
    ids = [str(t.pk) for t in tenants]
    assert fleet.fleet_tenants_migrate(tenant_ids=ids) == {i: {"outcome": "migrated"} for i in ids}
    assert slept == []  # never waited for the stale one
    # A fresh one that never ends holds a chunk its time at most, then the chunk goes on.
    Tenant.objects.filter(pk=stuck.pk).update(updated_at=timezone.now())
    for tenant in tenants:
        forget_workspace(tenant.schema_name)
    settings.FLEET_MIGRATION_GIVE_WAY = 0.3  # (sleep stays a no-op: the clock moves on)
    assert fleet.fleet_tenants_migrate(tenant_ids=ids) == {i: {"outcome": "migrated"} for i in ids}
    assert slept  # it did wait


def test_migrate_requests_one_fleet_run_per_set_of_migrations(owner, transactional_db):
    active_tenants(1, owner)
    call_command("migrate", "--no-fleet", verbosity=0)
    assert not FleetRun.objects.exists()
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    (run,) = FleetRun.objects.all()
    assert (run.pk, run.status) == (fleet.fleet_run_id(), FleetStatus.PENDING)
    from orchestration.models import OutboxEntry

    (row,) = OutboxEntry.objects.filter(workflow_id=run.workflow_id)
    assert row.workflow_type == "FleetMigrationWorkflow"
    assert row.arguments["run_id"] == run.pk


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pause"], "No fleet run yet"),
        (["--retry-failed"], "No fleet run yet"),
        (["--concurrency", "0"], "at least 1"),
        (["--wait", "--poll", "0"], "--poll must be a positive number"),
    ],
)
def test_migrate_fleet_refuses_what_cannot_apply(transactional_db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("migrate_fleet", *args)


def test_migrate_fleet_refuses_to_retry_a_run_without_failures(transactional_db):
    with transaction.atomic():
        run, _ = fleet.fleet_run_request()
    with pytest.raises(CommandError, match="still pending"):
        call_command("migrate_fleet", "--retry-failed")
    FleetRun.objects.filter(pk=run.pk).update(status=FleetStatus.COMPLETED)
    with pytest.raises(CommandError, match="no failed tenants"):
        call_command("migrate_fleet", "--retry-failed")
    with pytest.raises(CommandError, match="cannot resume"):
        call_command("migrate_fleet", "--resume")


ADD_FIELD = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workspace", "0001_initial")]
    operations = [migrations.AddField("project", "note", models.CharField(max_length=9, null=True))]
"""


@pytest.fixture
def workspace_with_an_added_field(settings, tmp_path, monkeypatch):
    """The workspace app's migrations plus ``0002_project_note`` (an AddField), for this test;
    the code's migrations are read once per process, so that cache is dropped around it."""
    import shutil

    import tenants

    package = tmp_path / "added_field_migrations"
    shutil.copytree(
        Path(tenants.__file__).parent / "workspace" / "migrations",
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (package / "0002_project_note.py").write_text(ADD_FIELD)

    def activate() -> None:
        monkeypatch.syspath_prepend(str(tmp_path))
        settings.MIGRATION_MODULES = {"workspace": package.name}
        migration_digests.cache_clear()

    yield activate
    migration_digests.cache_clear()


def test_a_plan_without_new_models_is_applied_in_process_like_migrate(
    owner, workspace_with_an_added_field
):
    from django_tenants.signals import schema_migrated

    tenants = active_tenants(2, owner)
    workspace_with_an_added_field()  # the deploy: one more migration
    names = [t.schema_name for t in tenants]
    assert schemas_behind(names) == set(names)
    migrated = []

    def record(sender, schema_name, **kwargs):
        migrated.append(schema_name)

    schema_migrated.connect(record)
    try:
        assert all(migrate_schema(name) for name in names)
    finally:
        schema_migrated.disconnect(record)
    assert migrated == names
    assert schemas_behind(names) == set()
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'workspace_project' AND column_name = 'note'",
                [name],
            )
            assert cursor.fetchone()[0] == 1
            query = sql.SQL("SELECT name FROM {}.django_migrations WHERE app = 'workspace'")
            cursor.execute(query.format(sql.Identifier(name)))
            assert sorted(r[0] for r in cursor.fetchall()) == ["0001_initial", "0002_project_note"]
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()[0].startswith("public")  # back to public afterwards


def test_the_plan_worked_out_once_serves_every_schema_and_a_failure_spoils_none(
    owner, workspace_with_an_added_field
):
    """The plan and its starting state are worked out for the first schema and copied for
    the next: a schema whose migration fails in the middle (the column is already there)
    leaves nothing behind for the schemas migrated after it."""
    from django.db import ProgrammingError

    tenants = active_tenants(3, owner)
    workspace_with_an_added_field()
    first, broken, last = (t.schema_name for t in tenants)
    with connection.cursor() as cursor:
        add = "ALTER TABLE {}.workspace_project ADD COLUMN note varchar(9)"
        cursor.execute(sql.SQL(add).format(sql.Identifier(broken)))
    assert migrate_schema(first)
    with pytest.raises(ProgrammingError, match="note"):
        migrate_schema(broken)
    assert migrate_schema(last)
    assert schemas_behind([first, broken, last]) == {broken}
    # The state kept for the next schema is still the one before the plan.
    from tenants.schemas import migrate

    (kept,) = [
        entry[2]
        for entry in migrate._plans.by_key.values()
        if isinstance(entry, tuple) and any(m.name == "0002_project_note" for m, _ in entry[1])
    ]
    assert "note" not in kept.models["workspace", "project"].fields


def test_schemas_are_migrated_in_chunks_of_one_shard_at_background_priority(owner, temporal):
    """Each migration activity takes up to CHUNK schemas whose tenants share a shard queue,
    at background priority, with the run as its fairness key; together they cover every
    schema behind exactly once."""
    from temporalio.client import Client

    from orchestration.routing import Workload, deployment_tenant_route
    from orchestration.workflows.fleet_migration import CHUNK
    from tests.kit import run_async

    tenants = active_tenants(2 * SHARDS * CHUNK + 3, owner)
    for tenant in tenants:
        forget_workspace(tenant.schema_name)
    run = request_run()
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        run = finished(run)
    assert (run.status, run.migrated) == (FleetStatus.COMPLETED, len(tenants))

    async def scheduled() -> list:
        client = await Client.connect(temporal)
        history = await client.get_workflow_handle(run.workflow_id).fetch_history()
        return [
            event.activity_task_scheduled_event_attributes
            for event in history.events
            if event.HasField("activity_task_scheduled_event_attributes")
            and event.activity_task_scheduled_event_attributes.activity_type.name
            == "fleet_migrate_tenants"
        ]

    chunks = run_async(scheduled())
    covered = []
    for chunk in chunks:
        (tenant_ids,) = [json.loads(p.data) for p in chunk.input.payloads]
        assert 1 <= len(tenant_ids) <= CHUNK
        queues = {
            deployment_tenant_route(t, workload=Workload.BACKGROUND).task_queue for t in tenant_ids
        }
        assert queues == {chunk.task_queue.name}  # one shard queue per chunk
        assert chunk.priority.priority_key == Workload.BACKGROUND
        assert chunk.priority.fairness_key == f"fleet:{run.pk}"
        covered += tenant_ids
    assert sorted(covered) == sorted(str(t.pk) for t in tenants)
    assert len(chunks) < len(tenants) / 2


def test_wait_sees_the_run_end_when_it_is_written_not_at_the_next_poll(transactional_db):
    """``--wait`` listens for the run's changes (a trigger's NOTIFY): with reads a minute
    apart, it still reports the end as soon as another connection commits it."""
    with transaction.atomic():
        run, _ = fleet.fleet_run_request()

    def finish():
        time.sleep(0.5)  # most likely waiting by then; it listens before its first read anyway
        fleet.fleet_run_started(run_id=run.pk)
        fleet.fleet_run_finished(run_id=run.pk, cancelled=False)
        connection.close()

    finisher = threading.Thread(target=finish)
    finisher.start()
    out, began = StringIO(), time.monotonic()
    call_command("migrate_fleet", "--wait", "--poll", "60", stdout=out)
    finisher.join()
    assert time.monotonic() - began < 30  # well before the first read interval ends
    assert "(completed, attempt 1)" in out.getvalue()


def test_a_batch_reads_on_while_every_tenant_it_read_is_current(owner):
    """A fleet with nothing to apply is walked ``reach`` batches per activity; a batch with
    a schema behind ends the read, so migrations still go batch by batch."""
    tenants = sorted(active_tenants(7, owner), key=lambda tenant: tenant.schema_name)
    forget_workspace(tenants[4].schema_name)
    run, _ = fleet.fleet_run_request()

    first = fleet.fleet_batch(run_id=run.pk, after="", size=2, reach=5)
    # Tenants 0-1 and 2-3 are current, so 4-5 are read too; 4 is behind: the read ends.
    assert first["last"] == tenants[5].schema_name
    assert first["behind"] == [str(tenants[4].pk)]
    assert first["current"] == [str(t.pk) for t in tenants[:6] if t != tenants[4]]
    rest = fleet.fleet_batch(run_id=run.pk, after=first["last"], size=2, reach=5)
    assert rest == {"last": tenants[6].schema_name, "behind": [], "current": [str(tenants[6].pk)]}
    assert fleet.fleet_batch(run_id=run.pk, after=rest["last"], size=2, reach=5)["last"] == ""
    one = fleet.fleet_batch(run_id=run.pk, after="", size=2)  # reach 1: one batch, as before
    assert one["last"] == tenants[1].schema_name


def test_wait_rides_out_a_database_outage(transactional_db, monkeypatch):
    """A deploy step waiting on the run does not die when the database goes away for a
    while: it says so, reads again until it is back, and still ends with the run."""
    from django.db import OperationalError

    from tenants.management.commands import migrate_fleet

    with transaction.atomic():
        run, _ = fleet.fleet_run_request()
    real_summary, real_connect = fleet.fleet_run_summary, migrate_fleet.psycopg.connect
    outage = {"reads": 3, "listens": 2}

    def summary(of):
        if outage["reads"]:
            outage["reads"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return real_summary(of)

    def connect(*args, **kwargs):
        if outage["listens"]:
            outage["listens"] -= 1
            raise migrate_fleet.psycopg.OperationalError("connection refused")
        return real_connect(*args, **kwargs)

    fleet.fleet_run_started(run_id=run.pk)
    fleet.fleet_run_finished(run_id=run.pk, cancelled=False)
    monkeypatch.setattr(fleet, "fleet_run_summary", summary)
    monkeypatch.setattr(migrate_fleet.psycopg, "connect", connect)
    out = StringIO()
    call_command("migrate_fleet", "--wait", "--poll", "0.05", stdout=out)
    said = out.getvalue()
    assert said.count("Database unreachable (OperationalError: server closed") == 1
    assert "Database back." in said
    assert "(completed, attempt 1)" in said
    assert outage == {"reads": 0, "listens": 0}  # listening was tried again after a failure


def test_a_suspended_tenant_is_still_migrated(owner):
    """A suspension keeps the data: its schema stays at the code's migrations, so the
    tenant can be reactivated onto the current code."""
    from tenants.models import SuspensionReason
    from tenants.services import tenant_suspend

    (tenant,) = active_tenants(1, owner)
    forget_workspace(tenant.schema_name)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
    assert fleet.fleet_schemas_behind() == (1, 1)
    run, _ = fleet.fleet_run_request()
    assert fleet.fleet_run_started(run_id=run.pk) == 1
    assert fleet.fleet_batch(run_id=run.pk, after="", size=10)["behind"] == [str(tenant.pk)]
    assert fleet.fleet_tenant_migrate(tenant_id=str(tenant.pk)) == {"outcome": "migrated"}
    assert schemas_behind([tenant.schema_name]) == set()
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.SUSPENDED
