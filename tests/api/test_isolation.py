"""A member of tenant A can neither read, delete nor learn of tenant B, on any endpoint."""

import re
import uuid

import pytest

from accounts.models import TokenPurpose
from orchestration.workflows.tenant_provisioning import PROVISIONING
from tenants.models import Role, Tenant, TenantStatus
from tests.api.conftest import bearer, signup
from tests.factories import MembershipFactory, TokenFactory

pytestmark = pytest.mark.django_db

EXPORT_ID = "<str:export_id>"
DOMAIN = "<str:domain>"
USER_ID = "<str:user_id>"
INVITATION_ID = "<str:invitation_id>"
ENDPOINTS = [  # every endpoint that takes a tenant id
    ("get", "/api/v1/tenants/{id}/"),
    ("patch", "/api/v1/tenants/{id}/"),
    ("delete", "/api/v1/tenants/{id}/"),
    ("post", "/api/v1/tenants/{id}/restore/"),
    ("get", "/api/v1/tenants/{id}/domains/"),
    ("post", "/api/v1/tenants/{id}/domains/"),
    ("get", "/api/v1/tenants/{id}/domains/{domain}/"),
    ("delete", "/api/v1/tenants/{id}/domains/{domain}/"),
    ("post", "/api/v1/tenants/{id}/exports/"),
    ("get", "/api/v1/tenants/{id}/exports/{export}/"),
    ("get", "/api/v1/tenants/{id}/members/"),
    ("patch", "/api/v1/tenants/{id}/members/{user}/"),
    ("delete", "/api/v1/tenants/{id}/members/{user}/"),
    ("post", "/api/v1/tenants/{id}/ownership/"),
    ("get", "/api/v1/tenants/{id}/invitations/"),
    ("post", "/api/v1/tenants/{id}/invitations/"),
    ("delete", "/api/v1/tenants/{id}/invitations/{invitation}/"),
]


def test_every_endpoint_that_takes_a_tenant_id_is_enumerated_here():
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and "tenant_id" in route:
                yield route, entry

    found = {
        (
            method,
            "/"
            + re.sub(r"<[^>]*tenant_id>", "{id}", route)
            .replace(EXPORT_ID, "{export}")
            .replace(DOMAIN, "{domain}")
            .replace(USER_ID, "{user}")
            .replace(INVITATION_ID, "{invitation}"),
        )
        for route, p in walk(get_resolver("config.urls_public").url_patterns)
        for method in p.callback.cls.http_method_names
        if hasattr(p.callback.cls, method) and method not in {"options", "head"}
    }
    assert found == set(ENDPOINTS)


# The ids after the tenant's in a path: any, since the tenant is someone else's or unknown.
OTHER_IDS = {
    "export": uuid.uuid4(),
    "domain": "shop.example.org",
    "user": uuid.uuid4(),
    "invitation": uuid.uuid4(),
}


@pytest.fixture
def two_tenants(api):
    a = signup(api, email="a@example.com", subdomain="alpha").json()
    b = signup(api, email="b@example.com", subdomain="bravo").json()
    return a, b


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_other_tenant_is_404_like_a_tenant_that_does_not_exist(api, two_tenants, method, path):
    a, b = two_tenants
    other = getattr(api, method)(
        path.format(id=b["tenant"]["id"], **OTHER_IDS),
        **bearer(a["token"]),
    )
    missing = getattr(api, method)(
        path.format(id=uuid.uuid4(), **OTHER_IDS),
        **bearer(a["token"]),
    )
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    assert Tenant.objects.get(pk=b["tenant"]["id"]).status == TenantStatus.PENDING


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_token_is_401(api, two_tenants, method, path):
    _, b = two_tenants
    url = path.format(id=b["tenant"]["id"], **OTHER_IDS)
    assert getattr(api, method)(url).status_code == 401


def test_malformed_tenant_id_is_404(api, two_tenants):
    a, _ = two_tenants
    assert api.get("/api/v1/tenants/not-a-uuid/", **bearer(a["token"])).status_code == 404


def test_me_lists_only_own_memberships(api, two_tenants):
    a, b = two_tenants
    me = api.get("/api/v1/me/", **bearer(a["token"])).json()
    assert [m["tenant"]["id"] for m in me["memberships"]] == [a["tenant"]["id"]]
    assert b["tenant"]["id"] not in str(me)


def test_member_who_is_not_owner_cannot_delete(api, two_tenants):
    a, _ = two_tenants
    tenant = Tenant.objects.get(pk=a["tenant"]["id"])
    raw = _colleague_token(tenant)
    assert api.get(f"/api/v1/tenants/{tenant.pk}/", **bearer(raw)).status_code == 200
    assert api.delete(f"/api/v1/tenants/{tenant.pk}/", **bearer(raw)).status_code == 403
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.PENDING


def test_owner_deletes_with_202_and_a_deletion_workflow_start(api, two_tenants):
    from orchestration.models import OutboxEntry
    from orchestration.outbox import workflow_type
    from orchestration.workflows import TenantDeletionWorkflow

    TENANT_DELETION = workflow_type(TenantDeletionWorkflow)

    a, _ = two_tenants
    response = api.delete(f"/api/v1/tenants/{a['tenant']['id']}/", **bearer(a["token"]))
    assert response.status_code == 202
    assert response.json()["status"] == "deleting"
    assert OutboxEntry.objects.filter(workflow_type=TENANT_DELETION).count() == 1
    again = api.delete(f"/api/v1/tenants/{a['tenant']['id']}/", **bearer(a["token"]))
    assert again.status_code == 202  # idempotent; the workflow id is fixed


def test_status_reads_progress_from_the_database_with_temporal_down(api, two_tenants, settings):
    a, _ = two_tenants
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"
    body = api.get(f"/api/v1/tenants/{a['tenant']['id']}/", **bearer(a["token"])).json()
    assert body["progress"] == {
        "steps_done": [],
        "current_step": None,
        "total": len(PROVISIONING.steps),
        "state": "queued",
        "error": "",
    }


def _colleague_token(tenant) -> str:
    """The raw API token of a new plain member of ``tenant``."""
    membership = MembershipFactory(user__email="c@example.com", tenant=tenant, role=Role.MEMBER)
    return TokenFactory(user=membership.user, purpose=TokenPurpose.API).raw


def test_owner_follows_the_status_url_to_deleted_and_members_lose_sight(api, two_tenants):
    from tenants.services import tenant_access_revoke, tenant_request_deletion, tenant_set_status

    a, _ = two_tenants
    tenant = Tenant.objects.get(pk=a["tenant"]["id"])
    colleague = _colleague_token(tenant)
    url = a["status_url"]
    # What the deletion workflow does: revoke access, then mark the tombstone deleted.
    tenant_request_deletion(tenant_id=tenant.pk)
    tenant_access_revoke(tenant_id=tenant.pk)
    assert api.get(url, **bearer(a["token"])).json()["status"] == "deleting"
    tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.DELETED)

    body = api.get(url, **bearer(a["token"])).json()
    assert body["status"] == "deleted"
    assert body["deleted_at"]
    assert body["domain"] is None  # the host is released
    assert api.delete(url, **bearer(a["token"])).status_code == 409
    for method in ("get", "delete"):
        assert getattr(api, method)(url, **bearer(colleague)).status_code == 404


def test_owner_sees_why_provisioning_failed_after_the_saga_removed_the_membership(api, two_tenants):
    from tenants.services import membership_remove_owner, tenant_set_status

    a, _ = two_tenants
    tenant_id = a["tenant"]["id"]
    membership_remove_owner(tenant_id=tenant_id)  # the saga's undo of the membership step
    tenant_set_status(
        tenant_id=tenant_id,
        status=TenantStatus.FAILED,
        error="create_schema: connection to server at 10.0.0.5, port 5432 failed",
    )
    body = api.get(a["status_url"], **bearer(a["token"])).json()
    assert body["status"] == "failed"
    # The step, not the internal message (the admin shows that in full).
    assert body["last_error"] == "Provisioning failed at step create_schema."


def test_status_polling_is_rate_limited_per_user(api, two_tenants):
    a, b = two_tenants
    codes = [api.get(a["status_url"], **bearer(a["token"])).status_code for _ in range(21)]
    assert codes == [200] * 20 + [429]
    assert api.get(b["status_url"], **bearer(b["token"])).status_code == 200  # another user


def test_an_owner_without_an_active_membership_does_not_see_an_active_tenant(api, two_tenants):
    """The owner-of-record exception is only for what the platform took away (failed,
    deleting, deleted): staff deactivating a membership of a live tenant takes access."""
    from tenants.models import Membership

    a, _ = two_tenants
    Tenant.objects.filter(pk=a["tenant"]["id"]).update(status=TenantStatus.ACTIVE)
    Membership.objects.filter(tenant_id=a["tenant"]["id"]).update(is_active=False)
    for method in ("get", "delete"):
        assert getattr(api, method)(a["status_url"], **bearer(a["token"])).status_code == 404
    assert Tenant.objects.get(pk=a["tenant"]["id"]).status == TenantStatus.ACTIVE
