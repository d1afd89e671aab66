"""POST /api/v1/tenants/: another organisation for an account that already exists."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import TenantProvisioningWorkflow
from tenants.models import Membership, Role, Tenant, TenantStatus
from tenants.services import tenant_set_status
from tests.api.conftest import bearer, signup

TENANT_PROVISIONING = workflow_type(TenantProvisioningWorkflow)

pytestmark = pytest.mark.django_db


def create(api, token, **body):
    return api.post("/api/v1/tenants/", body, format="json", **bearer(token))


@pytest.fixture
def token(api):
    return signup(api).json()["token"]


def test_another_organisation_is_owned_listed_and_provisioned(api, token):
    response = create(api, token, organization_name="Beta Ltd", subdomain="Beta")
    assert response.status_code == 202, response.json()
    body = response.json()
    tenant = Tenant.objects.get(subdomain="beta")
    assert body["tenant"]["id"] == str(tenant.pk)
    assert body["tenant"]["status"] == TenantStatus.PENDING
    assert body["status_url"] == f"/api/v1/tenants/{tenant.pk}/"
    assert tenant.owner.email == "ada@example.com"
    assert Membership.objects.get(tenant=tenant).role == Role.OWNER
    # One provisioning start per tenant: the signup's and this one.
    assert OutboxEntry.objects.filter(workflow_type=TENANT_PROVISIONING).count() == 2
    assert api.get(body["status_url"], **bearer(token)).json()["subdomain"] == "beta"
    memberships = api.get("/api/v1/me/", **bearer(token)).json()["memberships"]
    assert sorted(m["tenant"]["subdomain"] for m in memberships) == ["acme", "beta"]


def test_needs_a_token(api):
    response = api.post(
        "/api/v1/tenants/", {"organization_name": "B", "subdomain": "b"}, format="json"
    )
    assert response.status_code == 401
    assert not Tenant.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"organization_name": "", "subdomain": "-x-"}, {"organization_name", "subdomain"}),
        ({"organization_name": "B", "subdomain": "www"}, {"subdomain"}),
        ({"organization_name": "B", "subdomain": "acme"}, {"subdomain"}),
        ({"organization_name": "B", "subdomain": "ACME"}, {"subdomain"}),
        ({"organization_name": 7, "subdomain": ["b"]}, {"organization_name", "subdomain"}),
        ({}, {"organization_name", "subdomain"}),
    ],
)
def test_bad_input_is_400_with_field_errors_and_writes_nothing(api, token, body, fields):
    before = Tenant.objects.count(), OutboxEntry.objects.count()
    response = create(api, token, **body)
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert (Tenant.objects.count(), OutboxEntry.objects.count()) == before


def test_the_owner_limit_counts_tenants_that_are_not_deleted(api, token, settings):
    settings.TENANTS_PER_OWNER = 2
    assert create(api, token, organization_name="B", subdomain="b").status_code == 202
    refused = create(api, token, organization_name="C", subdomain="c")
    assert refused.status_code == 409
    assert "2 organisations" in refused.json()["detail"]
    assert not Tenant.objects.filter(subdomain="c").exists()
    # A deleted organisation frees its place: the stranded owner can start again.
    acme = Tenant.objects.get(subdomain="acme")
    for status in (TenantStatus.DELETING, TenantStatus.DELETED):
        tenant_set_status(tenant_id=acme.pk, status=status)
    assert create(api, token, organization_name="C", subdomain="c").status_code == 202


def test_is_rate_limited_per_user(api, token, monkeypatch):
    # DRF reads the rates once, into the class.
    rates = {**ScopedRateThrottle.THROTTLE_RATES, "organization": "2/hour"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    codes = [
        create(api, token, organization_name=f"O{i}", subdomain=f"o{i}").status_code
        for i in range(3)
    ]
    assert codes == [202, 202, 429]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_cannot_pass_the_owner_limit(settings):
    settings.TENANTS_PER_OWNER = 2
    token = signup(APIClient(HTTP_HOST="localhost")).json()["token"]
    barrier = threading.Barrier(2)
    codes = []

    def one(subdomain):
        try:
            barrier.wait()
            client = APIClient(HTTP_HOST="localhost")
            codes.append(
                create(client, token, organization_name="X", subdomain=subdomain).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(s,)) for s in ("x1", "x2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [202, 409]
    assert Tenant.objects.count() == 2
