"""The warm schema pool through the real provisioning workflow: real PostgreSQL, Temporal dev
server, worker and relay. Concurrent provisionings each get their own pool schema, a stale
pool schema is never handed out, and the refill workflow keeps the pool full."""

import pytest
from django.db import connection

from orchestration.schedules import project_schedules, schema_pool_schedule_id
from tenants import pool
from tenants.models import PoolSchema, TenantStatus
from tenants.schemas.create import FROM_TEMPLATE
from tenants.schemas.migration_state import migration_state, recorded_migrations
from tenants.services import tenant_request_provisioning
from tests.factories import TenantFactory
from tests.kit import wait_until
from tests.workers import BackgroundWorker, recorded_creations, settled

pytestmark = pytest.mark.usefixtures("queue_prefix")


def oid(schema: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema])
        row = cursor.fetchone()
    return row[0] if row else None


def provision(owner, count: int) -> list:
    tenants = [TenantFactory(owner=owner) for _ in range(count)]
    for tenant in tenants:
        tenant_request_provisioning(tenant_id=tenant.pk)
    return tenants


def test_concurrent_provisionings_each_claim_their_own_pool_schema(owner, temporal, schema_pool):
    oids = {oid(name) for name in schema_pool(3)}
    replace, claimed, created = recorded_creations()
    tenants = provision(owner, 3)
    # The tenant queue only: the refills the claims ask for wait on the jobs queue, so the
    # pool is not refilled under the test's feet.
    with BackgroundWorker(temporal, replace=replace):
        done = [settled(t.pk, TenantStatus.ACTIVE, TenantStatus.FAILED) for t in tenants]
    assert [t.status for t in done] == [TenantStatus.ACTIVE] * 3, [t.last_error for t in done]
    assert claimed == [pool.FROM_POOL] * 3
    assert created == []  # no run needed the task queue's step
    assert all(t.steps_done[:2] == ["mark_provisioning", "create_schema"] for t in done)
    # Each tenant's schema is one of the pool's (same OID: renamed), and no two share one.
    assert {oid(t.schema_name) for t in done} == oids
    assert not PoolSchema.objects.exists()


def test_a_stale_pool_is_never_handed_out(owner, temporal, schema_pool):
    edited, older = schema_pool(2)
    # One was built before the code's last migration (its django_migrations lacks a row);
    # the other by code whose migrations differed (another fingerprint).
    with connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{edited}".django_migrations WHERE id = '  # noqa: S608 - our own name
            f'(SELECT max(id) FROM "{edited}".django_migrations)'
        )
    PoolSchema.objects.filter(name=older).update(fingerprint="built-by-older-code")
    replace, claimed, created = recorded_creations()
    (tenant,) = provision(owner, 1)
    with BackgroundWorker(temporal, replace=replace):
        tenant = settled(tenant.pk, TenantStatus.ACTIVE, TenantStatus.FAILED)
    assert tenant.status == TenantStatus.ACTIVE, tenant.last_error
    assert claimed == [FROM_TEMPLATE]  # the template, not a stale pool schema
    assert created == []
    assert oid(tenant.schema_name) not in {None, oid(older)}
    assert recorded_migrations(tenant.schema_name) >= set(migration_state())
    assert oid(edited) is None  # dropped by the claim that found it stale
    assert list(PoolSchema.objects.values_list("name", flat=True)) == [older]


def test_the_refill_workflow_keeps_the_pool_full(owner, temporal, schema_pool, settings):
    schema_pool(0)  # a fresh template snapshot, no pool yet
    settings.TENANT_SCHEMA_POOL_SIZE = 2
    replace, claimed, created = recorded_creations()
    (first,) = provision(owner, 1)
    current = PoolSchema.objects.filter(fingerprint=pool.pool_fingerprint())
    with BackgroundWorker(temporal, kinds=("tenant", "jobs"), replace=replace):
        settled(first.pk, TenantStatus.ACTIVE)
        # The empty pool was a miss (the template was replayed instead); the claim asked
        # for a refill, which fills the pool.
        wait_until(lambda: current.count() == 2, timeout=60, what="the pool to be filled")
        (second,) = provision(owner, 1)
        settled(second.pk, TenantStatus.ACTIVE)
        wait_until(lambda: current.count() == 2, timeout=60, what="the pool to be refilled")
    assert claimed == [FROM_TEMPLATE, pool.FROM_POOL]
    assert created == []
    assert current.count() == 2  # full, never past the size


def test_the_refill_schedule_exists_only_with_a_pool(settings):
    settings.TENANT_SCHEMA_POOL_SIZE = 0
    assert schema_pool_schedule_id() not in project_schedules()
    settings.TENANT_SCHEMA_POOL_SIZE = 2
    schedule = project_schedules()[schema_pool_schedule_id()]
    assert schedule.action.workflow == "SchemaPoolRefillWorkflow"
    assert schedule.action.args[0].prune is True


@pytest.mark.parametrize(
    ("field", "value"), [("prune", "yes"), ("max_builds", 0), ("delay_seconds", -1)]
)
def test_refill_input_validation_names_the_field(field, value):
    from temporalio.exceptions import ApplicationError

    from orchestration.workflows import SchemaPoolRefillInput

    with pytest.raises(ApplicationError, match=f"invalid input: {field} "):
        SchemaPoolRefillInput(**{field: value})
