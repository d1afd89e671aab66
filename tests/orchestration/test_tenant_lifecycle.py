"""Provisioning and deletion end to end: real PostgreSQL, Temporal, worker and relay."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django_tenants.utils import schema_context

from accounts.models import TokenPurpose, User
from accounts.services import token_issue
from orchestration.activities import tenants as steps
from orchestration.workflows.tenant_provisioning import PROVISIONING
from tenants.models import Domain, Membership, Role, SchemaTemplate, Tenant, TenantStatus
from tenants.schemas.create import BY_MIGRATIONS, FROM_TEMPLATE, schema_exists
from tenants.schemas.migration_state import migration_state
from tenants.schemas.snapshot import sync_template
from tenants.services import tenant_request_deletion, tenant_request_provisioning
from tenants.workspace.defaults import DEFAULT_SETTINGS, WELCOME_PROJECT
from tenants.workspace.models import Project, Setting
from tests.factories import TenantFactory
from tests.kit import wait_until
from tests.workers import (
    SHARDS,
    BackgroundWorker,
    fail_after,
    fail_instead,
    recorded_creations,
    settled,
)

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")


def tenant_tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize(
    "path", [FROM_TEMPLATE, BY_MIGRATIONS], ids=["from-template", "by-migrations"]
)
def test_tenant_goes_pending_to_active_and_is_served_from_its_schema(owner, temporal, client, path):
    if path == FROM_TEMPLATE:
        assert sync_template() is not None, "no snapshot stored (is pg_dump missing?)"
    else:
        SchemaTemplate.objects.all().delete()
    # The template is replayed by the step's first try, a local activity; only without a
    # usable template does the step go the long way, on the task queue.
    replace, tried, created = recorded_creations()
    tenant = TenantFactory(owner=owner, subdomain="acme")
    tenant_request_provisioning(tenant_id=tenant.pk)
    with BackgroundWorker(temporal, replace=replace):
        tenant = settled(tenant.pk, TenantStatus.ACTIVE, TenantStatus.FAILED)
    assert tenant.status == TenantStatus.ACTIVE, tenant.last_error
    if path == FROM_TEMPLATE:
        assert (tried, created) == ([path], [])
    else:
        assert (tried, created) == ([""], [path])
    assert tenant.provisioned_at is not None

    schema = tenant.schema_name
    assert {"workspace_project", "workspace_setting", "workspace_task"} <= tenant_tables(schema)
    assert "accounts_user" not in tenant_tables(schema)  # shared apps stay in public
    with schema_context(schema):
        recorded = MigrationRecorder.Migration.objects.values_list("app", "name")
        applied = {f"{app}.{name}" for app, name in recorded}
        assert applied == set(migration_state())
        assert dict(Setting.objects.values_list("key", "value")) == DEFAULT_SETTINGS
        assert list(Project.objects.values_list("name", flat=True)) == [WELCOME_PROJECT]
    assert list(Domain.objects.filter(tenant=tenant).values_list("domain", "is_primary")) == [
        ("acme.localhost", True)
    ]
    assert Membership.objects.get(tenant=tenant, user=owner).role == Role.OWNER

    anonymous = client.get("/", HTTP_HOST="acme.localhost")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ok"}  # nothing that identifies the tenant
    _, token = token_issue(user=owner, purpose=TokenPurpose.API, ttl=timedelta(hours=1))
    member = client.get("/", HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert member.status_code == 200
    assert member.json()["schema"] == schema
    stranger = User.objects.create_user("eve@example.com", "a long passphrase 456")
    _, token = token_issue(user=stranger, purpose=TokenPurpose.API, ttl=timedelta(hours=1))
    other = client.get("/", HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert other.json() == {"status": "ok"}


def test_deletion_leaves_no_schema_no_domain_and_a_deleted_tombstone(owner, temporal, client):
    tenant = TenantFactory(owner=owner, subdomain="acme")
    tenant_request_provisioning(tenant_id=tenant.pk)
    with BackgroundWorker(temporal):
        settled(tenant.pk, TenantStatus.ACTIVE)
        tenant_request_deletion(tenant_id=tenant.pk)
        tenant = settled(tenant.pk, TenantStatus.DELETED)
    assert tenant.deleted_at is not None
    assert not schema_exists(tenant.schema_name)
    assert not Domain.objects.filter(tenant=tenant).exists()
    assert not Membership.objects.filter(tenant=tenant, is_active=True).exists()
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 404


# Every step of the saga fails once, after doing its work (the worst case: it half-happened),
# except those that are one UPDATE: they commit or they do not, and a failure after commit
# would be retried, so they fail without doing anything.
FAIL_INSTEAD = {steps.tenant_mark_provisioning, steps.tenant_mark_active}


@pytest.mark.parametrize(
    ("step", "inject"),
    [
        (step.activity, fail_instead if step.activity in FAIL_INSTEAD else fail_after)
        for step in PROVISIONING.steps
    ],
    ids=lambda s: getattr(s, "__name__", ""),
)
def test_failure_at_each_step_is_undone_and_retry_succeeds(owner, temporal, step, inject):
    tenant = TenantFactory(owner=owner, subdomain="acme")
    tenant_request_provisioning(tenant_id=tenant.pk)
    with BackgroundWorker(temporal, replace={step.__name__: inject(step)}):
        tenant = settled(tenant.pk, TenantStatus.FAILED)
    assert f"injected failure in {step.__name__}" in tenant.last_error
    assert not schema_exists(tenant.schema_name)
    assert not Domain.objects.filter(tenant=tenant).exists()
    assert not Membership.objects.filter(tenant=tenant).exists()

    tenant_request_provisioning(tenant_id=tenant.pk)  # what "Retry provisioning" does
    with BackgroundWorker(temporal):
        tenant = settled(tenant.pk, TenantStatus.ACTIVE, TenantStatus.FAILED)
    assert tenant.status == TenantStatus.ACTIVE, tenant.last_error
    assert tenant.provisioning_attempt == 2
    assert schema_exists(tenant.schema_name)
    assert Domain.objects.filter(tenant=tenant).count() == 1


def test_worker_killed_mid_provisioning_then_a_new_worker_finishes_it(
    owner, start_worker, prefix, settings
):
    """The worker is killed while it is inside ``create_domain`` (held there by a table lock
    the test takes), after the schema was made: a new worker finishes the run, with one
    schema, one domain and one membership."""
    import signal

    import psycopg

    from core.db import libpq_params

    settings.TEMPORAL_QUEUE_PREFIX, settings.TEMPORAL_QUEUE_SHARDS = prefix, SHARDS
    tenant = TenantFactory(owner=owner, subdomain="acme")
    tenant_request_provisioning(tenant_id=tenant.pk)
    blocker = psycopg.connect(**libpq_params())
    try:
        blocker.execute(f"LOCK TABLE {Domain._meta.db_table} IN SHARE MODE")  # INSERTs wait
        first, _log = start_worker()

        def inside_create_domain() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE %s",
                    [f'%"{Domain._meta.db_table}"%'],
                )
                return cursor.fetchone()[0] >= 1

        wait_until(inside_create_domain, timeout=60, what="the worker to block in create_domain")
        first.send_signal(signal.SIGKILL)  # no chance to finish or report anything
        first.wait(10)
        killed = Tenant.objects.get(pk=tenant.pk)
        assert killed.status == TenantStatus.PROVISIONING
        assert schema_exists(killed.schema_name)
    finally:
        blocker.rollback()  # the dead worker's INSERT may now go through: a half-done step
        blocker.close()

    start_worker()
    tenant = settled(tenant.pk, TenantStatus.ACTIVE, TenantStatus.FAILED)
    assert tenant.status == TenantStatus.ACTIVE, tenant.last_error
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%%'")
        assert cursor.fetchone()[0] == 1  # this tenant's schema only, once
    assert list(Domain.objects.filter(tenant=tenant).values_list("domain", flat=True)) == [
        "acme.localhost"
    ]
    assert Membership.objects.filter(tenant=tenant).count() == 1
