"""Two tenant databases, end to end: signups placed by the policy, and every path following
the tenant to its database (its host, the provisioning, a task and an export in its schema,
a fleet run, its deletion), with the real worker, relay and Temporal dev server."""

import io
import json
import zipfile

import pytest
from django.db import connections, transaction
from psycopg import sql

from tenants import fleet
from tenants.models import ExportStatus, FleetRun, Tenant, TenantExport, TenantStatus
from tenants.schemas.migration_state import migration_state
from tests.api.conftest import bearer, signup
from tests.kit import wait_until
from tests.workers import BackgroundWorker, settled

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")


@pytest.fixture
def both_open(settings, tmp_path):
    settings.TENANT_DATABASES = {
        "default": {"WEIGHT": 1, "OPEN": True},
        "tenants2": {"WEIGHT": 1, "OPEN": True},
    }
    settings.TENANT_DELETION_GRACE = 0  # deletion at once
    settings.MEDIA_ROOT = str(tmp_path / "media")


def schema_in(alias: str, name: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def forget_workspace(alias: str, schema: str) -> None:
    """The schema as a deploy with a new workspace migration leaves it: behind by that app."""
    with connections[alias].cursor() as cursor:
        for table in ("workspace_task", "workspace_project", "workspace_setting"):
            cursor.execute(
                sql.SQL("DROP TABLE {}.{}").format(*map(sql.Identifier, (schema, table)))
            )
        query = sql.SQL("DELETE FROM {}.django_migrations WHERE app = 'workspace'")
        cursor.execute(query.format(sql.Identifier(schema)))


def recorded(alias: str, schema: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        query = sql.SQL("SELECT app || '.' || name FROM {}.django_migrations")
        cursor.execute(query.format(sql.Identifier(schema)))
        return {row[0] for row in cursor.fetchall()}


def test_tenants_spread_over_two_databases_each_served_from_its_own(api, temporal, both_open):
    signups = [
        signup(api, email="ada@example.com", subdomain="acme").json(),
        signup(api, email="bob@example.com", subdomain="bolt").json(),
    ]
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        tenants = [settled(s["tenant"]["id"], TenantStatus.ACTIVE) for s in signups]
        assert [t.database for t in tenants] == ["default", "tenants2"]
        for tenant, body in zip(tenants, signups, strict=True):
            assert schema_in(tenant.database, tenant.schema_name)
            other = "default" if tenant.database == "tenants2" else "tenants2"
            assert not schema_in(other, tenant.schema_name)
            host = f"{tenant.subdomain}.localhost"
            home = api.get("/", HTTP_HOST=host, **bearer(body["token"])).json()
            assert home["schema"] == tenant.schema_name
            assert home["database"] == tenant.database
            assert home["projects"] == 1  # the welcome project, seeded in its database

        # An export: a django task run in the tenant's schema, reading its database.
        bolt, token = tenants[1], signups[1]["token"]
        created = api.post(f"/api/v1/tenants/{bolt.pk}/exports/", **bearer(token))
        assert created.status_code == 202, created.content
        wait_until(
            lambda: TenantExport.objects.filter(status=ExportStatus.READY).exists(),
            timeout=60,
            what="the export to be ready",
        )
        body = api.get(created.json()["status_url"], **bearer(token)).json()
        archive = zipfile.ZipFile(
            io.BytesIO(b"".join(api.get(body["download_url"]).streaming_content))
        )
        projects = json.loads(archive.read("workspace_project.json"))
        assert [p["name"] for p in projects] == ["Getting started"]

        # A fleet run reaches the schemas of both databases.
        for tenant in tenants:
            forget_workspace(tenant.database, tenant.schema_name)
        with transaction.atomic():
            run, _ = fleet.fleet_run_request()

        def ended():
            run.refresh_from_db()
            return not run.is_open

        wait_until(ended, timeout=120, what="the fleet run to end")
        assert run.migrated == 2, FleetRun.objects.values()
        for tenant in tenants:
            assert recorded(tenant.database, tenant.schema_name) >= set(migration_state())

        # Deletion drops the schema in the tenant's database.
        assert api.delete(f"/api/v1/tenants/{bolt.pk}/", **bearer(token)).status_code == 202
        settled(bolt.pk, TenantStatus.DELETED)
        assert not schema_in("tenants2", bolt.schema_name)
    assert schema_in("default", tenants[0].schema_name)
    assert Tenant.objects.get(pk=tenants[0].pk).status == TenantStatus.ACTIVE
