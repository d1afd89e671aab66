"""Tenant schemas in several databases: settings, placement, the router, schema work, the
pool. The tests run with two tenant databases, ``default`` and ``tenants2``."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django_tenants.utils import schema_context, tenant_context
from psycopg import sql

from core.env import env_pairs, tenant_databases_from_env
from tenants import pool
from tenants.databases import UnknownDatabase, on_database, place_tenant, tenants_per_database
from tenants.models import TenantStatus
from tenants.services import (
    tenant_schema_create,
    tenant_schema_drop,
    tenant_schema_migrate,
    tenant_seed_defaults,
)
from tenants.workspace.defaults import WELCOME_PROJECT
from tenants.workspace.models import Project
from tests.factories import TenantFactory


def schemas_in(alias: str, name: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


@pytest.fixture
def both_open(settings):
    settings.TENANT_DATABASES = {
        "default": {"WEIGHT": 1, "OPEN": True},
        "tenants2": {"WEIGHT": 1, "OPEN": True},
    }
    return settings.TENANT_DATABASES


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"TENANT_DATABASE_WEIGHTS": "eu9=2"}, "names eu9: not a database"),
        ({"TENANT_DATABASES_CLOSED": "eu9"}, "names eu9: not a database"),
        ({"TENANT_DATABASE_WEIGHTS": "default=0"}, "default=0 must be a whole number >= 1"),
        ({"TENANT_DATABASE_WEIGHTS": "default=two"}, "default=two must be a whole number"),
        ({"TENANT_DATABASE_WEIGHTS": "default"}, "'default' is not key=value"),
        ({"TENANT_DATABASE_WEIGHTS": "default=1 default=2"}, "names 'default' twice"),
        ({"TENANT_DATABASES_CLOSED": "default,eu2"}, "closes every database"),
    ],
)
def test_bad_database_settings_are_refused_naming_the_variable(monkeypatch, environment, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        tenant_databases_from_env(["default", "eu2"])


def test_database_settings_read_weights_and_closed_ones(monkeypatch):
    monkeypatch.setenv("TENANT_DATABASE_WEIGHTS", "eu2=3")
    monkeypatch.setenv("TENANT_DATABASES_CLOSED", "default")
    assert tenant_databases_from_env(["default", "eu2"]) == {
        "default": {"WEIGHT": 1, "OPEN": False},
        "eu2": {"WEIGHT": 3, "OPEN": True},
    }


@pytest.mark.parametrize(
    ("databases", "problem"),
    [
        ({"tenants2": {"WEIGHT": 1, "OPEN": True}}, "must name 'default'"),
        (
            {"default": {"WEIGHT": 1, "OPEN": True}, "eu9": {"WEIGHT": 1, "OPEN": True}},
            "'eu9' is not in DATABASES",
        ),
        ({"default": {"WEIGHT": 0, "OPEN": True}}, "WEIGHT 0: a whole number >= 1"),
        ({"default": {"WEIGHT": 1, "OPEN": False}}, "every database is closed"),
    ],
)
def test_tenant_databases_set_in_python_are_checked_at_start_up(databases, problem):
    from django.conf import settings

    from tenants.conf import tenant_databases_problem

    assert problem in tenant_databases_problem(databases, settings.DATABASES)
    assert tenant_databases_problem(settings.TENANT_DATABASES, settings.DATABASES) is None


def test_database_urls_are_alias_url_pairs(monkeypatch):
    monkeypatch.setenv("TENANT_DATABASE_URLS", "eu2=postgres://a@h/x, eu3=postgres://a@h/y")
    assert env_pairs("TENANT_DATABASE_URLS") == {
        "eu2": "postgres://a@h/x",
        "eu3": "postgres://a@h/y",
    }


# --- placement ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_new_tenants_go_to_the_open_database_with_fewest_tenants_for_its_weight(both_open):
    assert place_tenant() == "default"  # a tie: the first in TENANT_DATABASES
    TenantFactory(database="default")
    assert place_tenant() == "tenants2"
    TenantFactory(database="tenants2")
    TenantFactory(database="tenants2", status=TenantStatus.DELETED)  # deleted: not counted
    assert place_tenant() == "default"
    both_open["tenants2"]["WEIGHT"] = 3  # three times the tenants of default
    assert place_tenant() == "tenants2"  # 1/3 against 1/1
    TenantFactory(database="tenants2")
    assert place_tenant() == "tenants2"  # 2/3 against 1/1
    TenantFactory(database="tenants2")
    assert place_tenant() == "default"  # 3/3 against 1/1: a tie
    assert tenants_per_database() == {"default": 1, "tenants2": 3}


@pytest.mark.django_db
def test_a_closed_database_takes_no_new_tenant(both_open):
    TenantFactory(database="default")
    both_open["tenants2"]["OPEN"] = False
    assert place_tenant() == "default"


@pytest.mark.django_db
def test_signup_records_the_database_it_placed_the_tenant_in(both_open):
    from tenants.services import tenant_create
    from tests.factories import UserFactory

    owner = UserFactory()
    first = tenant_create(name="One", subdomain="one", owner=owner)
    second = tenant_create(name="Two", subdomain="two", owner=owner)
    assert [first.database, second.database] == ["default", "tenants2"]


def test_work_on_a_database_not_in_tenant_databases_is_refused():
    with (
        pytest.raises(UnknownDatabase, match="'nope' is not a tenant database"),
        on_database("nope"),
    ):
        pass


# --- schemas in another database ---------------------------------------------------------


@pytest.fixture
def elsewhere(drop_tenant_schemas, owner):
    """An active tenant placed in ``tenants2``, with its schema there."""
    tenant = TenantFactory(owner=owner, status=TenantStatus.ACTIVE, database="tenants2")
    tenant_schema_create(tenant_id=tenant.pk)
    return tenant


def test_a_tenants_schema_is_made_migrated_and_dropped_in_its_database(elsewhere):
    name = elsewhere.schema_name
    assert schemas_in("tenants2", name)
    assert not schemas_in("default", name)
    tenant_schema_migrate(tenant_id=elsewhere.pk)  # current: nothing to do, no error
    with on_database("tenants2"):
        from tenants.schemas.migration_state import migration_state, recorded_migrations

        assert recorded_migrations(name) >= set(migration_state())
    elsewhere.status = TenantStatus.DELETING
    elsewhere.save()
    assert tenant_schema_drop(tenant_id=elsewhere.pk) is True
    assert not schemas_in("tenants2", name)


def test_the_orm_reads_and_writes_a_tenants_data_in_its_database(elsewhere):
    tenant_seed_defaults(tenant_id=elsewhere.pk)
    with tenant_context(elsewhere):
        assert list(Project.objects.values_list("name", flat=True)) == [WELCOME_PROJECT]
        Project.objects.create(name="Moved data")
        assert Project.objects.count() == 2
    with connections["tenants2"].cursor() as cursor:
        query = sql.SQL("SELECT count(*) FROM {}.workspace_project")
        cursor.execute(query.format(sql.Identifier(elsewhere.schema_name)))
        assert cursor.fetchone()[0] == 2


def test_tenants_in_two_databases_keep_their_own_data(elsewhere, active_tenant):
    here = active_tenant("here")
    tenant_seed_defaults(tenant_id=elsewhere.pk)
    tenant_seed_defaults(tenant_id=here.pk)
    with tenant_context(here):
        Project.objects.create(name="Only here")
    with tenant_context(elsewhere):
        assert not Project.objects.filter(name="Only here").exists()
    with tenant_context(here):
        assert Project.objects.filter(name="Only here").exists()
    with schema_context(elsewhere.schema_name):  # the name only: its tenant is looked up
        assert Project.objects.count() == 1


# --- the pool ----------------------------------------------------------------------------


def test_each_open_database_keeps_a_pool_and_a_claim_takes_from_its_own(
    both_open, schema_pool, owner
):
    names = schema_pool(1)
    by_database = dict(pool.PoolSchema.objects.values_list("database", "name"))
    assert sorted(by_database) == ["default", "tenants2"]
    assert sorted(by_database.values()) == names
    assert schemas_in("tenants2", by_database["tenants2"])
    tenant = TenantFactory(owner=owner, status=TenantStatus.PROVISIONING, database="tenants2")
    assert tenant_schema_create(tenant_id=tenant.pk) == pool.FROM_POOL
    assert schemas_in("tenants2", tenant.schema_name)
    assert not schemas_in("tenants2", by_database["tenants2"])
    assert pool.PoolSchema.objects.get().name == by_database["default"]  # untouched


def test_a_closed_databases_pool_is_pruned(both_open, schema_pool):
    schema_pool(1)
    both_open["tenants2"]["OPEN"] = False
    dropped = pool.prune()
    assert len(dropped) == 1
    assert list(pool.PoolSchema.objects.values_list("database", flat=True)) == ["default"]
    assert not schemas_in("tenants2", dropped[0])
