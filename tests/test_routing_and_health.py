from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection

from accounts.models import TokenPurpose
from accounts.services import token_issue
from tenants.models import Domain, Role, Tenant, TenantStatus
from tenants.services.people import membership_create
from tests.factories import TenantFactory
from tests.kit import run_async


@pytest.fixture
def tenant_with_schema(transactional_db):
    """An active tenant whose schema exists, with its primary domain. Dropped afterwards."""
    tenant = TenantFactory(subdomain="acme", status=TenantStatus.ACTIVE)
    tenant.create_schema(check_if_exists=True)
    Domain.objects.create(tenant=tenant, domain="acme.localhost", is_primary=True)
    yield tenant
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')


def test_active_tenant_host_is_served_in_its_schema(client, tenant_with_schema):
    # A member sees which tenant and schema answered; anyone else, nothing that identifies it.
    membership_create(user=tenant_with_schema.owner, tenant=tenant_with_schema, role=Role.OWNER)
    _, token = token_issue(
        user=tenant_with_schema.owner, purpose=TokenPurpose.API, ttl=timedelta(hours=1)
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.get("/", HTTP_HOST="acme.localhost:8000", **auth)
    assert response.status_code == 200
    body = response.json()
    assert body["schema"] == tenant_with_schema.schema_name
    assert body["tenant"]["subdomain"] == "acme"
    assert client.get("/", HTTP_HOST="acme.localhost:8000").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "status", [TenantStatus.PENDING, TenantStatus.FAILED, TenantStatus.DELETED]
)
def test_tenant_that_is_not_active_is_not_served(client, tenant_with_schema, status):
    Tenant.objects.filter(pk=tenant_with_schema.pk).update(status=status)
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["nobody.localhost", "evil.example.com", "acme.localhost.evil"])
def test_unknown_host_is_404(client, host):
    assert client.get("/", HTTP_HOST=host).status_code == 404
    assert client.get("/healthz", HTTP_HOST=host).status_code == 404


@pytest.mark.django_db
def test_public_host_does_not_serve_tenant_urls(client):
    assert client.get("/", HTTP_HOST="localhost").status_code == 404
    assert client.get("/admin/login/", HTTP_HOST="localhost").status_code == 200


@pytest.mark.django_db
def test_readyz_ok_with_database_and_temporal_up(client, temporal):
    response = client.get("/readyz", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "temporal": "ok"}


@pytest.mark.django_db
def test_temporal_down_is_a_field_of_readyz_and_no_concern_of_healthz(client, settings):
    from devstack.localservices import free_port

    settings.TEMPORAL_ADDRESS = f"127.0.0.1:{free_port()}"  # nothing listens there
    response = client.get("/readyz", HTTP_HOST="localhost")
    assert response.status_code == 200  # the web tier works without Temporal
    body = response.json()
    assert body == {"database": "ok", "temporal": "unavailable"}  # words, not error text
    live = client.get("/healthz", HTTP_HOST="localhost")
    assert (live.status_code, live.json()) == (200, {"database": "ok"})


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_database_down_is_503_on_both(client, temporal, path):
    broken = mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.cursor",
        side_effect=OperationalError("db gone"),
    )
    with broken:
        response = client.get(path, HTTP_HOST="localhost")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["database"] == "unavailable"
    assert "db gone" not in response.content.decode()  # anyone may call: no error text


def test_one_temporal_client_per_process(temporal):
    from orchestration import client as temporal_client

    first = run_async(temporal_client.shared())
    again = run_async(temporal_client.shared())  # another event loop, the same client
    assert first is again
