"""Tenant data export through the API, run by the task backend on the real dev server."""

import io
import json
import time
import zipfile

import pytest
from django.core.files.storage import default_storage
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from tenants.exports import schema_tables
from tenants.models import ExportStatus, Role, TenantExport, TenantStatus
from tenants.services import tenant_request_deletion
from tenants.workspace.models import Project, Task
from tests.factories import MembershipFactory, TokenFactory
from tests.kit import wait_until
from tests.workers import BackgroundWorker, settled


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
            timeout=60, what="the export to be ready",
        )  # fmt: skip
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

    def deleted_meanwhile(out, schema):
        counts = real_write(out, schema)
        exports.tenant_exports_delete(tenant_id=acme.pk)  # the deletion's step, mid-write
        return counts

    monkeypatch.setattr(exports, "_write_zip", deleted_meanwhile)
    with schema_context(acme.schema_name):
        exports.export_tenant_data.call(str(export.pk))
    assert not TenantExport.objects.filter(pk=export.pk).exists()
    assert not default_storage.exists(exports.export_file_name(export))
