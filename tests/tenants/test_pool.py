"""The warm schema pool (tenants/pool.py) against the real PostgreSQL: claims are atomic
under concurrency, a stale pool schema is never handed out, and nothing that lists tenants
or their schemas sees a pool schema."""

import threading
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from psycopg import sql

from orchestration.models import OutboxEntry
from tenants import pool
from tenants.conf import template_schema_problem
from tenants.models import PoolSchema
from tenants.schemas.migration_state import migration_state, recorded_migrations
from tenants.selectors import existing_tenant_schemas
from tests.factories import TenantFactory


def oid(schema: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema])
        row = cursor.fetchone()
    return row[0] if row else None


def tenant_schema() -> str:
    return f"t_{uuid.uuid4().hex}"


def forget_a_migration(schema: str) -> None:
    """The schema now looks built before the code's last migration."""
    table = sql.Identifier(schema, "django_migrations")
    query = sql.SQL("DELETE FROM {} WHERE id = (SELECT max(id) FROM {})").format(table, table)
    with connection.cursor() as cursor:
        cursor.execute(query)


def test_a_filled_pool_holds_current_schemas_under_pool_names(schema_pool):
    names = schema_pool(3)
    assert len(names) == 3
    for name in names:
        assert name.startswith("pool_")
        assert recorded_migrations(name) >= set(migration_state())
    assert pool.fill_one() is None  # full


def test_concurrent_claims_never_get_the_same_schema(schema_pool):
    names = schema_pool(4)
    oids = {oid(name) for name in names}
    targets = [tenant_schema() for _ in range(8)]
    results: dict[str, str | None] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def claim(target: str) -> None:
        try:
            barrier.wait(30)
            results[target] = pool.claim(target)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    claimed = {target: name for target, name in results.items() if name is not None}
    assert len(claimed) == 4  # the whole pool, once each
    assert sorted(claimed.values()) == names
    assert {oid(target) for target in claimed} == oids  # each tenant got a distinct schema
    for target in set(targets) - set(claimed):
        assert oid(target) is None  # the others found the pool empty
    assert not PoolSchema.objects.exists()
    # Every claim (successful or not) asked for a refill, in its own transaction.
    refills = OutboxEntry.objects.filter(workflow_type="SchemaPoolRefillWorkflow")
    assert refills.count() == len(targets)


def test_a_pool_schema_missing_a_migration_is_dropped_not_handed_out(schema_pool):
    stale, current = schema_pool(2)
    forget_a_migration(stale)
    PoolSchema.objects.filter(name=current).update(fingerprint="built-by-older-code")
    target = tenant_schema()
    assert pool.claim(target) is None
    assert oid(stale) is None  # dropped by the claim that found it stale
    assert oid(target) is None
    # The other was built at other migrations: never considered, and dropped by a prune.
    assert oid(current) is not None
    assert pool.prune() == [current]
    assert oid(current) is None
    assert not PoolSchema.objects.exists()


def test_after_a_migration_change_the_pool_is_emptied_and_rebuilt(schema_pool, monkeypatch):
    old = set(schema_pool(2))
    monkeypatch.setattr(pool, "pool_fingerprint", lambda: "after-a-migration-change")
    assert pool.claim(tenant_schema()) is None  # none of the old ones is handed out
    assert set(pool.prune()) == old
    assert all(oid(name) is None for name in old)
    rebuilt = {pool.fill_one(), pool.fill_one()}
    assert None not in rebuilt
    assert not rebuilt & old
    assert set(PoolSchema.objects.values_list("fingerprint", flat=True)) == {
        "after-a-migration-change"
    }


def test_prune_drops_surplus_and_debris(schema_pool, settings):
    names = schema_pool(3)
    settings.TENANT_SCHEMA_POOL_SIZE = 1
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "pool_debris"')  # a schema with no row
    dropped = pool.prune()
    kept = PoolSchema.objects.get().name  # the oldest stays
    assert sorted(dropped) == sorted({*names} - {kept} | {"pool_debris"})
    assert oid(kept) is not None
    assert all(oid(name) is None for name in dropped)


def test_with_no_pool_a_claim_runs_no_sql(settings, db, django_assert_num_queries):
    settings.TENANT_SCHEMA_POOL_SIZE = 0
    with django_assert_num_queries(0):
        assert pool.claim(tenant_schema()) is None


def test_a_claim_refuses_a_bad_schema_name(schema_pool):
    schema_pool(1)
    with pytest.raises(ValidationError):
        pool.claim('x"; DROP SCHEMA public; --')
    assert PoolSchema.objects.count() == 1


def test_pool_schemas_are_invisible_to_tenant_listings_and_migrate_schemas(
    schema_pool, admin_client
):
    names = schema_pool(2)
    tenant = TenantFactory()
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{tenant.schema_name}"')
    # existing_tenant_schemas() is what migrate_schemas iterates.
    assert existing_tenant_schemas() == [tenant.schema_name]
    assert not set(names) & set(existing_tenant_schemas())
    assert "pool schema" in template_schema_problem("pool_template")
    listing = admin_client.get("/admin/tenants/tenant/", HTTP_HOST="localhost")
    assert listing.status_code == 200
    assert tenant.subdomain in listing.text
    assert "pool_" not in listing.text
