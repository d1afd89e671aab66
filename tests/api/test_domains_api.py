"""The domains API: a new subdomain (PATCH on the tenant) and custom domains, for owners and
admins; members are refused with a detail, strangers get 404, bad input a 400 that changes
nothing."""

import pytest

from orchestration.models import OutboxEntry
from tenants.models import Domain, Role, Tenant, TenantStatus
from tests.api.conftest import bearer
from tests.factories import MembershipFactory, TenantFactory, TokenFactory

pytestmark = pytest.mark.django_db


def caller(tenant, role) -> dict:
    token = TokenFactory(user=tenant.owner) if role == Role.OWNER else TokenFactory()
    MembershipFactory(user=token.user, tenant=tenant, role=role)
    return bearer(token.raw)


def url(tenant, *rest: str) -> str:
    return "/".join([f"/api/v1/tenants/{tenant.pk}", *rest, ""])


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_an_owner_or_admin_changes_the_subdomain(api, acme, role):
    response = api.patch(
        url(acme), {"subdomain": " Acme-Labs "}, format="json", **caller(acme, role)
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["subdomain"], body["domain"]) == ("acme-labs", "acme-labs.localhost")
    (previous,) = body["previous_domains"]
    assert previous["domain"] == "acme.localhost"
    assert previous["expires_at"]
    assert api.get(url(acme), **caller(acme, Role.MEMBER)).json()["previous_domains"] == [previous]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"subdomain": "www"}, "subdomain", "reserved"),
        ({"subdomain": "taken"}, "subdomain", "taken"),
        ({"subdomain": "acme"}, "subdomain", "already"),
        ({"subdomain": "a_b"}, "subdomain", "Use lower-case letters"),
        ({}, "subdomain", "required"),
        ({"subdomain": 7}, "subdomain", "valid string"),
    ],
)
def test_a_bad_subdomain_is_a_400_that_changes_nothing(api, acme, owner, body, field, message):
    TenantFactory(owner=owner, subdomain="taken")
    response = api.patch(url(acme), body, format="json", **caller(acme, Role.OWNER))
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert Tenant.objects.get(pk=acme.pk).subdomain == "acme"
    assert not OutboxEntry.objects.filter(workflow_type="PreviousDomainReleaseWorkflow").exists()


def test_members_are_refused_with_a_detail_and_strangers_see_nothing(api, acme):
    member = caller(acme, Role.MEMBER)
    for response in (
        api.patch(url(acme), {"subdomain": "mine"}, format="json", **member),
        api.post(url(acme, "domains"), {"domain": "shop.example.org"}, format="json", **member),
        api.delete(url(acme, "domains", "shop.example.org"), **member),
    ):
        assert response.status_code == 403
        assert "owner or an admin" in response.json()["detail"]
    stranger = bearer(TokenFactory().raw)
    assert api.patch(url(acme), {"subdomain": "x"}, format="json", **stranger).status_code == 404
    assert api.get(url(acme, "domains"), **stranger).status_code == 404
    assert api.get(url(acme, "domains", "shop.example.org"), **stranger).status_code == 404
    assert Tenant.objects.get(pk=acme.pk).subdomain == "acme"


@pytest.mark.parametrize("status", [TenantStatus.PENDING, TenantStatus.FAILED])
def test_a_tenant_that_is_not_active_answers_409(api, owner, status):
    tenant = TenantFactory(owner=owner, subdomain="acme", status=status)
    auth = caller(tenant, Role.OWNER)
    response = api.patch(url(tenant), {"subdomain": "acme-labs"}, format="json", **auth)
    assert response.status_code == 409
    assert "active" in response.json()["detail"]
    response = api.post(url(tenant, "domains"), {"domain": "a.example.org"}, format="json", **auth)
    assert response.status_code == 409
    assert not Domain.objects.filter(tenant=tenant).exists()


def test_a_suspended_tenant_answers_with_its_state(api, acme):
    auth = caller(acme, Role.OWNER)
    Tenant.objects.filter(pk=acme.pk).update(
        status=TenantStatus.SUSPENDED, suspension_reason="billing"
    )
    response = api.patch(url(acme), {"subdomain": "acme-labs"}, format="json", **auth)
    assert (response.status_code, response.json()["status"]) == (403, "suspended")


def test_custom_domains_are_added_listed_and_removed(api, acme):
    auth = caller(acme, Role.OWNER)
    response = api.post(url(acme, "domains"), {"domain": "Shop.Example.org"}, format="json", **auth)
    assert response.status_code == 202, response.json()
    body = response.json()
    token = Domain.objects.get(domain="shop.example.org").token
    assert body["status"] == "pending"
    assert body["record"] == {
        "type": "TXT",
        "name": "_tenantflow-verification.shop.example.org",
        "value": token,
    }
    assert body["url"] == url(acme, "domains", "shop.example.org")
    member = caller(acme, Role.MEMBER)
    assert api.get(url(acme, "domains"), **member).json() == [body]
    assert api.get(body["url"], **member).json() == body
    assert api.delete(body["url"], **auth).status_code == 204
    assert api.delete(body["url"], **auth).status_code == 404
    assert api.get(body["url"], **member).status_code == 404
    assert api.get(url(acme, "domains"), **member).json() == []


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("localhost", "Enter a domain name"),
        ("api.localhost", "platform's own"),
        ("127.0.0.1", "IP address"),
        ("taken.example.org", "another organisation"),
        ("", "blank"),
    ],
)
def test_a_bad_domain_is_a_400_that_changes_nothing(api, acme, owner, domain, message):
    other = TenantFactory(owner=owner, subdomain="other", status=TenantStatus.ACTIVE)
    Domain.objects.create(
        domain="taken.example.org", tenant=other, kind="custom", status="pending", token="t"
    )
    response = api.post(
        url(acme, "domains"), {"domain": domain}, format="json", **caller(acme, Role.OWNER)
    )
    assert response.status_code == 400
    assert message in " ".join(response.json()["domain"])
    assert set(Domain.objects.filter(tenant=acme).values_list("domain", flat=True)) == {
        "acme.localhost"
    }
