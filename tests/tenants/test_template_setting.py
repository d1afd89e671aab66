"""TENANT_TEMPLATE_SCHEMA is refused at start-up when using it would destroy or leak data;
pg_dump never gets the database password on its command line."""

import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.models import User
from tenants.conf import template_schema_problem
from tenants.schemas import snapshot
from tenants.schemas.snapshot import dump_script, sync_template
from tenants.services import tenant_create
from tests.test_settings import GOOD, start


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("public", "reserved schema name"),
        ("information_schema", "reserved schema name"),
        ("pg_catalog", "reserved schema name"),
        ("t_0123456789abcdef0123456789abcdef", "named like a tenant's schema"),
        ('x"; DROP SCHEMA public; --', "1-63 lower-case letters"),
        ("", "1-63 lower-case letters"),
    ],
)
def test_dangerous_template_names_are_refused(name, problem):
    assert problem in template_schema_problem(name)


def test_a_plain_name_is_fine():
    assert template_schema_problem("tenant_template") is None


@pytest.mark.parametrize("name", ["public", "t_0123456789abcdef0123456789abcdef"])
def test_start_up_refuses_it_naming_the_variable(name):
    result = start("config.settings.production", **GOOD, TENANT_TEMPLATE_SCHEMA=name)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"TENANT_TEMPLATE_SCHEMA={name!r} cannot be the template schema" in result.stderr


@pytest.mark.django_db
def test_the_schema_of_an_existing_tenant_is_refused_before_anything_is_dropped(settings):
    owner = User.objects.create_user("owner@example.com", "a long passphrase 123")
    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    settings.TENANT_TEMPLATE_SCHEMA = tenant.schema_name
    with pytest.raises(ImproperlyConfigured, match="is the schema of a tenant"):
        sync_template()


@pytest.mark.django_db
def test_pg_dump_gets_the_password_by_environment_not_argv(monkeypatch):
    seen = {}

    def fake_run(args, **kwargs):
        seen["args"], seen["env"] = args, kwargs.get("env")
        return subprocess.CompletedProcess(args, 0, stdout="", stderr="")

    monkeypatch.setattr(
        snapshot,
        "libpq_params",
        lambda using: {"host": "db", "dbname": "app", "password": "s3cret!"},
    )
    monkeypatch.setattr(snapshot.subprocess, "run", fake_run)
    dump_script("pg_dump", "tenant_template")
    assert not any("s3cret" in arg for arg in seen["args"])
    assert seen["env"]["PGPASSWORD"] == "s3cret!"
