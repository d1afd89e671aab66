"""Tenant data export through the API, run by the task backend on the real dev server."""

import io
import json
import threading
import time
import zipfile
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from rest_framework.test import APIClient
from temporalio.client import Client

from orchestration.models import OutboxEntry, TaskRecord
from orchestration.schedules import sync_schedules, tenant_exports_schedule_id
from tenants import exports
from tenants.exports import schema_tables, tenant_exports_delete_stale
from tenants.models import ExportStatus, Role, TenantExport, TenantStatus
from tenants.services import tenant_request_deletion
from tenants.workspace.models import Project, Task
from tests.factories import MembershipFactory, TokenFactory
from tests.kit import run_async, wait_until
from tests.workers import BackgroundWorker, settled, triggered_run_result


@pytest.fixture
def api(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return APIClient(HTTP_HOST="localhost")


@pytest.fixture
def acme(active_tenant, owner):
    tenant = active_tenant("acme")
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    with schema_context(tenant.schema_name):
        apollo = Project.objects.create(name="Apollo", description="to the moon")
        Project.objects.create(name="Gemini", is_archived=True)
        Task.objects.create(project=apollo, title="launch")
    return tenant


def auth(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {TokenFactory(user=user).raw}"}


def ready_export(api, acme, owner, temporal) -> dict:
    created = api.post(f"/api/v1/tenants/{acme.pk}/exports/", **auth(owner))
    assert created.status_code == 202, created.content
    assert created.json()["status"] == ExportStatus.PENDING
    assert created.json()["download_url"] is None
    with BackgroundWorker(temporal, kinds=("tenant",)):
        wait_until(
            lambda: TenantExport.objects.filter(status=ExportStatus.READY).exists(),
            timeout=60,
            what="the export to be ready",
        )
    status = api.get(created.json()["status_url"], **auth(owner))
    assert status.status_code == 200
    return status.json()


def test_owner_gets_a_zip_whose_files_match_the_tenants_rows(
    api, acme, owner, temporal, queue_prefix
):
    body = ready_export(api, acme, owner, temporal)
    assert body["status"] == ExportStatus.READY
    assert body["tables"]["workspace_project"] == 2
    download = api.get(body["download_url"])  # the link is the credential: no token
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    with schema_context(acme.schema_name):
        tables = schema_tables(acme.schema_name)
        projects = list(Project.objects.order_by("pk").values("id", "name", "description"))
        tasks = list(Task.objects.values_list("title", "project_id"))
    assert sorted(archive.namelist()) == sorted(f"{t}.json" for t in tables)
    exported = json.loads(archive.read("workspace_project.json"))
    assert (
        sorted(
            ({k: row[k] for k in ("id", "name", "description")} for row in exported),
            key=lambda row: row["id"],
        )
        == projects
    )
    exported_tasks = json.loads(archive.read("workspace_task.json"))
    assert [(r["title"], r["project_id"]) for r in exported_tasks] == tasks
    # Only this tenant's tables: nothing of the public schema.
    assert "accounts_user.json" not in archive.namelist()


def test_a_stranger_gets_404_and_a_member_403(api, acme, owner, db):
    from tests.factories import UserFactory

    stranger, member = UserFactory(), UserFactory()
    MembershipFactory(user=member, tenant=acme, role=Role.MEMBER)
    url = f"/api/v1/tenants/{acme.pk}/exports/"
    assert api.post(url, **auth(stranger)).status_code == 404
    assert api.post(url, **auth(member)).status_code == 403
    assert not TenantExport.objects.exists()


def test_link_expires(api, acme, owner, temporal, queue_prefix, settings, monkeypatch):
    settings.TENANT_EXPORT_LINK_TTL = 60
    body = ready_export(api, acme, owner, temporal)
    later = time.time() + 61
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    expired = api.get(body["download_url"])
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]
    assert api.get("/api/v1/exports/forged:token:value/").status_code == 404


def test_inactive_tenant_cannot_export(api, acme, owner, db):
    acme.status = TenantStatus.DELETING
    acme.save()
    answer = api.post(f"/api/v1/tenants/{acme.pk}/exports/", **auth(owner))
    assert answer.status_code == 409  # the owner still sees a deleting tenant
    assert "only an active" in answer.json()["detail"]


def test_deleting_the_tenant_deletes_its_exports(api, acme, owner, temporal, queue_prefix):
    body = ready_export(api, acme, owner, temporal)
    export = TenantExport.objects.get(pk=body["id"])
    assert default_storage.exists(export.file_name)
    tenant_request_deletion(tenant_id=acme.pk)
    with BackgroundWorker(temporal, kinds=("tenant",)):
        settled(acme.pk, TenantStatus.DELETED)
    assert not default_storage.exists(export.file_name)
    assert not TenantExport.objects.filter(tenant=acme).exists()
    assert api.get(body["download_url"]).status_code == 404


def test_an_export_written_while_its_tenant_is_deleted_leaves_no_file(
    api, acme, owner, monkeypatch
):
    """The tenant's deletion removes its exports (files and rows) while an export is being
    written: the export's file, saved after that, is removed too."""
    from tenants import exports

    export = exports.TenantExport.objects.create(tenant=acme, requested_by=owner)
    real_write = exports._write_zip

    def deleted_meanwhile(out, schema, using):
        counts = real_write(out, schema, using)
        exports.tenant_exports_delete(tenant_id=acme.pk)  # the deletion's step, mid-write
        return counts

    monkeypatch.setattr(exports, "_write_zip", deleted_meanwhile)
    with schema_context(acme.schema_name):
        exports.export_tenant_data.call(str(export.pk))
    assert not TenantExport.objects.filter(pk=export.pk).exists()
    assert not default_storage.exists(exports.export_file_name(export))


# --- exports in flight ----------------------------------------------------------------------


def request_export(api, tenant, user):
    return api.post(f"/api/v1/tenants/{tenant.pk}/exports/", **auth(user))


def written() -> tuple[int, int, int]:
    return TenantExport.objects.count(), OutboxEntry.objects.count(), TaskRecord.objects.count()


def test_a_third_export_while_two_are_in_flight_answers_429_and_writes_nothing(
    api, acme, owner, settings
):
    settings.TENANT_EXPORTS_IN_FLIGHT = 2
    first, second = request_export(api, acme, owner), request_export(api, acme, owner)
    assert (first.status_code, second.status_code) == (202, 202)
    TenantExport.objects.filter(pk=first.json()["id"]).update(status=ExportStatus.RUNNING)
    before = written()
    third = request_export(api, acme, owner)
    assert third.status_code == 429, third.content
    assert third["Retry-After"] == "30"
    assert "At most 2 exports" in third.json()["detail"]
    assert written() == before


def test_an_export_is_accepted_again_once_one_in_flight_finishes(api, acme, owner, settings):
    settings.TENANT_EXPORTS_IN_FLIGHT = 2
    ids = [request_export(api, acme, owner).json()["id"] for _ in range(2)]
    assert request_export(api, acme, owner).status_code == 429
    TenantExport.objects.filter(pk=ids[0]).update(status=ExportStatus.READY)
    assert request_export(api, acme, owner).status_code == 202
    assert request_export(api, acme, owner).status_code == 429
    TenantExport.objects.filter(pk=ids[1]).update(status=ExportStatus.FAILED)
    assert request_export(api, acme, owner).status_code == 202
    assert TenantExport.objects.filter(status__in=exports.IN_FLIGHT).count() == 2


def test_another_tenants_exports_do_not_count(api, acme, active_tenant, owner, settings):
    settings.TENANT_EXPORTS_IN_FLIGHT = 1
    other = active_tenant("other")
    MembershipFactory(user=owner, tenant=other, role=Role.OWNER)
    assert request_export(api, acme, owner).status_code == 202
    assert request_export(api, other, owner).status_code == 202
    assert request_export(api, acme, owner).status_code == 429


def test_concurrent_requests_never_exceed_the_limit(acme, owner, settings, monkeypatch):
    """Six requests at once, each holding its transaction open a while after writing its
    export: were the count not taken under a lock, every one would count none in flight."""
    settings.TENANT_EXPORTS_IN_FLIGHT = 2
    real = exports.export_tenant_data

    class SlowToEnqueue:
        def enqueue(self, *args):
            time.sleep(0.3)
            return real.enqueue(*args)

    monkeypatch.setattr(exports, "export_tenant_data", SlowToEnqueue())
    headers = auth(owner)
    barrier = threading.Barrier(6)
    statuses = []

    def attempt():
        client = APIClient(HTTP_HOST="localhost")
        barrier.wait()
        try:
            statuses.append(client.post(f"/api/v1/tenants/{acme.pk}/exports/", **headers))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in statuses) == [202, 202, 429, 429, 429, 429], [
        r.content for r in statuses
    ]
    assert TenantExport.objects.filter(tenant=acme).count() == 2


# --- retention ------------------------------------------------------------------------------


def make_export(tenant, status, *, age: timedelta, with_file: bool = False) -> TenantExport:
    """An export created ``age`` ago, finished then when ``status`` is a finished one; with
    a file in the storage if asked."""
    export = TenantExport.objects.create(tenant=tenant, status=status)
    when = timezone.now() - age
    finished = when if status in exports.FINISHED else None
    TenantExport.objects.filter(pk=export.pk).update(created_at=when, finished_at=finished)
    if with_file:
        name = default_storage.save(exports.export_file_name(export), ContentFile(b"zip"))
        TenantExport.objects.filter(pk=export.pk).update(file_name=name)
    export.refresh_from_db()
    return export


def exports_of_all_kinds(tenant) -> tuple[list[TenantExport], list[TenantExport]]:
    """(stale, kept): finished more than a week ago; recent, or still in flight."""
    old, recent = timedelta(days=8), timedelta(days=6)
    stale = [
        make_export(tenant, ExportStatus.READY, age=old, with_file=True),
        make_export(tenant, ExportStatus.READY, age=old, with_file=True),
        make_export(tenant, ExportStatus.FAILED, age=old),
    ]
    # A failure recorded without its finish time: its age is its creation's.
    failed_long_ago = make_export(tenant, ExportStatus.FAILED, age=old)
    TenantExport.objects.filter(pk=failed_long_ago.pk).update(finished_at=None)
    stale.append(failed_long_ago)
    kept = [
        make_export(tenant, ExportStatus.READY, age=recent, with_file=True),
        make_export(tenant, ExportStatus.FAILED, age=recent),
        make_export(tenant, ExportStatus.PENDING, age=old),
        make_export(tenant, ExportStatus.RUNNING, age=old),
    ]
    return stale, kept


def assert_pruned(stale, kept):
    assert set(TenantExport.objects.values_list("pk", flat=True)) == {e.pk for e in kept}
    for export in stale:
        assert not default_storage.exists(exports.export_file_name(export))
    for export in kept:
        if export.file_name:
            assert default_storage.exists(export.file_name)


def test_prune_deletes_old_finished_exports_file_and_row_in_batches(api, acme):
    stale, kept = exports_of_all_kinds(acme)
    assert all(default_storage.exists(e.file_name) for e in stale if e.file_name)
    batches = [
        tenant_exports_delete_stale(retention=timedelta(days=7), batch_size=3) for _ in range(3)
    ]
    assert batches == [3, 1, 0]
    assert_pruned(stale, kept)


def test_an_export_that_fails_records_when(acme, monkeypatch):
    export = TenantExport.objects.create(tenant=acme)

    def broken(out, schema, using):
        raise OSError("disk full")

    monkeypatch.setattr(exports, "_write_zip", broken)
    with schema_context(acme.schema_name), pytest.raises(OSError, match="disk full"):
        exports.export_tenant_data.call(str(export.pk))
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_scheduled_prune_deletes_stale_exports(api, acme, temporal, queue_prefix, settings):
    """The worker's schedule sync creates the prune's schedule; a run it starts deletes
    exactly the exports finished more than TENANT_EXPORT_RETENTION seconds ago."""
    settings.TENANT_EXPORT_RETENTION = 7 * 24 * 3600
    stale, kept = exports_of_all_kinds(acme)

    async def trigger_and_wait():
        client = await Client.connect(temporal)
        ours = await sync_schedules(client)
        handle = client.get_schedule_handle(tenant_exports_schedule_id())
        schedule = (await handle.describe()).schedule
        result = await triggered_run_result(client, tenant_exports_schedule_id())
        for schedule_id in ours:
            await client.get_schedule_handle(schedule_id).delete()
        return schedule, result

    with BackgroundWorker(temporal, kinds=("jobs",)):
        schedule, deleted = run_async(trigger_and_wait())
    assert schedule.action.workflow == "TenantExportsPruneWorkflow"
    assert schedule.action.task_queue == f"{queue_prefix}.jobs"
    assert schedule.spec.intervals[0].every == timedelta(hours=1)
    assert deleted == len(stale)
    assert_pruned(stale, kept)


def test_an_export_abandoned_in_flight_stops_counting_and_is_failed_by_the_prune(
    api, acme, owner, settings
):
    """A run terminated, or a worker killed on the last attempt, leaves its export pending
    or running for good: past ABANDONED_AFTER it no longer holds the tenant's limit."""
    settings.TENANT_EXPORTS_IN_FLIGHT = 1
    lost = request_export(api, acme, owner).json()["id"]
    assert request_export(api, acme, owner).status_code == 429
    long_ago = timezone.now() - exports.ABANDONED_AFTER - timedelta(minutes=1)
    TenantExport.objects.filter(pk=lost).update(status=ExportStatus.RUNNING, created_at=long_ago)
    again = request_export(api, acme, owner)
    assert again.status_code == 202
    tenant_exports_delete_stale(retention=timedelta(days=7), batch_size=10)
    lost_export = TenantExport.objects.get(pk=lost)
    assert lost_export.status == ExportStatus.FAILED  # kept for its retention, as failed
    assert lost_export.error
    assert TenantExport.objects.get(pk=again.json()["id"]).status == ExportStatus.PENDING
