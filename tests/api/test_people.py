"""A tenant's members over the API: the list, role changes, removal and leaving, ownership
transfer, every refusal, and the role checks of the other tenant endpoints."""

import uuid

import pytest

from accounts.models import TokenPurpose
from tenants.models import Membership, Role, Tenant, TenantStatus
from tests.api.conftest import bearer
from tests.factories import MembershipFactory, TenantFactory, TokenFactory, UserFactory

pytestmark = pytest.mark.django_db


class People:
    """An active tenant with an owner (of record), an admin, two members and an outsider,
    each with an API token (``token[name]``) and a user (``user[name]``)."""

    def __init__(self):
        self.user = {
            name: UserFactory(email=f"{name}@example.com")
            for name in ("owner", "admin", "member", "member2", "outsider")
        }
        self.tenant = TenantFactory(owner=self.user["owner"], status=TenantStatus.ACTIVE)
        roles = {
            "owner": Role.OWNER,
            "admin": Role.ADMIN,
            "member": Role.MEMBER,
            "member2": Role.MEMBER,
        }
        for name, role in roles.items():
            MembershipFactory(user=self.user[name], tenant=self.tenant, role=role)
        self.token = {
            name: TokenFactory(user=user, purpose=TokenPurpose.API).raw
            for name, user in self.user.items()
        }

    def url(self, rest="") -> str:
        return f"/api/v1/tenants/{self.tenant.pk}/{rest}"

    def member_url(self, name) -> str:
        return self.url(f"members/{self.user[name].pk}/")

    def role(self, name) -> str | None:
        m = Membership.objects.filter(tenant=self.tenant, user=self.user[name]).first()
        return m.role if m else None


@pytest.fixture
def people():
    return People()


def test_any_member_lists_the_members_owners_first(api, people):
    body = api.get(people.url("members/"), **bearer(people.token["member"])).json()
    assert [(m["user"]["email"], m["role"]) for m in body] == [
        ("owner@example.com", "owner"),
        ("admin@example.com", "admin"),
        ("member@example.com", "member"),
        ("member2@example.com", "member"),
    ]
    assert [m["owner_of_record"] for m in body] == [True, False, False, False]


def test_an_outsider_gets_404_on_every_people_endpoint(api, people):
    auth = bearer(people.token["outsider"])
    assert api.get(people.url("members/"), **auth).status_code == 404
    assert (
        api.patch(people.member_url("member"), {"role": "admin"}, format="json", **auth).status_code
        == 404
    )
    assert api.delete(people.member_url("member"), **auth).status_code == 404
    assert (
        api.post(
            people.url("ownership/"),
            {"user_id": str(people.user["member"].pk)},
            format="json",
            **auth,
        ).status_code
        == 404
    )
    assert people.role("member") == Role.MEMBER


def test_an_owner_changes_any_role(api, people):
    auth = bearer(people.token["owner"])
    response = api.patch(people.member_url("member"), {"role": "admin"}, format="json", **auth)
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "admin"
    assert people.role("member") == Role.ADMIN
    assert (
        api.patch(people.member_url("admin"), {"role": "owner"}, format="json", **auth).status_code
        == 200
    )
    assert people.role("admin") == Role.OWNER


@pytest.mark.parametrize(
    ("actor", "target", "role", "code"),
    [
        ("member", "member2", "admin", 403),  # members change no roles
        ("member", "member", "owner", 403),  # not even their own
        ("admin", "member", "owner", 403),  # only an owner makes owners
        ("admin", "owner", "member", 403),  # only an owner changes an owner's role
        ("owner", "owner", "admin", 409),  # the owner of record stays an owner
        ("owner", "outsider", "admin", 404),  # not a member
    ],
)
def test_role_changes_refused(api, people, actor, target, role, code):
    before = {name: people.role(name) for name in people.user}
    response = api.patch(
        people.member_url(target), {"role": role}, format="json", **bearer(people.token[actor])
    )
    assert response.status_code == code, response.content
    assert response.json()["detail"]
    assert {name: people.role(name) for name in people.user} == before


def test_an_admin_moves_people_between_admin_and_member(api, people):
    auth = bearer(people.token["admin"])
    assert (
        api.patch(people.member_url("member"), {"role": "admin"}, format="json", **auth).status_code
        == 200
    )
    assert (
        api.patch(
            people.member_url("member"), {"role": "member"}, format="json", **auth
        ).status_code
        == 200
    )
    assert people.role("member") == Role.MEMBER


@pytest.mark.parametrize(
    "body", [{}, {"role": "king"}, {"role": 3}, {"role": None}, ["admin"], "admin"]
)
def test_bad_role_input_is_400_with_field_errors(api, people, body):
    response = api.patch(
        people.member_url("member"), body, format="json", **bearer(people.token["owner"])
    )
    assert response.status_code == 400
    assert people.role("member") == Role.MEMBER


def test_a_malformed_user_id_is_404(api, people):
    auth = bearer(people.token["owner"])
    url = people.url("members/not-a-uuid/")
    assert api.patch(url, {"role": "admin"}, format="json", **auth).status_code == 404
    assert api.delete(url, **auth).status_code == 404


def test_a_removed_member_loses_access_at_once(api, people):
    member = bearer(people.token["member"])
    assert api.get(people.url(), **member).status_code == 200
    response = api.delete(people.member_url("member"), **bearer(people.token["owner"]))
    assert response.status_code == 204
    assert people.role("member") is None
    assert api.get(people.url(), **member).status_code == 404
    assert api.get(people.url("members/"), **member).status_code == 404
    me = api.get("/api/v1/me/", **member).json()
    assert me["memberships"] == []


def test_a_member_leaves(api, people):
    auth = bearer(people.token["member"])
    assert api.delete(people.member_url("member"), **auth).status_code == 204
    assert api.get(people.url(), **auth).status_code == 404


@pytest.mark.parametrize(
    ("actor", "target", "code"),
    [
        ("member", "member2", 403),  # members remove nobody but themselves
        ("admin", "owner", 403),  # admins remove no owner
        ("owner", "owner", 409),  # the owner of record cannot leave
        ("admin", "outsider", 404),
    ],
)
def test_removals_refused(api, people, actor, target, code):
    response = api.delete(people.member_url(target), **bearer(people.token[actor]))
    assert response.status_code == code, response.content
    assert response.json()["detail"]
    assert Membership.objects.filter(tenant=people.tenant).count() == 4


def test_an_admin_removes_an_admin_and_a_member(api, people):
    MembershipFactory(user=people.user["outsider"], tenant=people.tenant, role=Role.ADMIN)
    auth = bearer(people.token["admin"])
    assert api.delete(people.member_url("outsider"), **auth).status_code == 204
    assert api.delete(people.member_url("member"), **auth).status_code == 204


def test_ownership_transfer_then_the_former_owner_may_step_down_and_leave(api, people):
    owner = bearer(people.token["owner"])
    target = str(people.user["member"].pk)
    response = api.post(people.url("ownership/"), {"user_id": target}, format="json", **owner)
    assert response.status_code == 200, response.content
    assert response.json()["owner_of_record"] is True
    tenant = Tenant.objects.get(pk=people.tenant.pk)
    assert tenant.owner == people.user["member"]
    assert people.role("member") == Role.OWNER
    assert people.role("owner") == Role.OWNER  # stays an owner until they choose otherwise
    # The new owner of record now cannot leave; the former one can.
    assert (
        api.delete(people.member_url("member"), **bearer(people.token["member"])).status_code == 409
    )
    assert (
        api.patch(people.member_url("owner"), {"role": "admin"}, format="json", **owner).status_code
        == 200
    )
    assert api.delete(people.member_url("owner"), **owner).status_code == 204


@pytest.mark.parametrize(
    ("actor", "body", "code"),
    [
        ("admin", {"user_id": "member"}, 403),
        ("member", {"user_id": "member"}, 403),
        ("owner", {"user_id": "outsider"}, 404),
        ("owner", {"user_id": "nope"}, 400),
        ("owner", {}, 400),
    ],
)
def test_ownership_transfer_refused(api, people, actor, body, code):
    if body.get("user_id") in people.user:
        body = {"user_id": str(people.user[body["user_id"]].pk)}
    response = api.post(
        people.url("ownership/"), body, format="json", **bearer(people.token[actor])
    )
    assert response.status_code == code, response.content
    assert Tenant.objects.get(pk=people.tenant.pk).owner == people.user["owner"]


def test_a_co_owner_cannot_leave_when_the_last_owner_but_can_among_several(api, people):
    # Two owners: the co-owner (not of record) may leave.
    MembershipFactory(user=people.user["outsider"], tenant=people.tenant, role=Role.OWNER)
    outsider = bearer(people.token["outsider"])
    assert api.delete(people.member_url("outsider"), **outsider).status_code == 204


def test_the_last_owner_is_kept_even_without_the_record(api, people):
    """A tenant whose owner of record lost the owner membership (staff edited it) still
    keeps its one remaining owner."""
    Membership.objects.filter(tenant=people.tenant, user=people.user["owner"]).delete()
    Membership.objects.filter(tenant=people.tenant, user=people.user["admin"]).update(
        role=Role.OWNER
    )
    auth = bearer(people.token["admin"])
    response = api.delete(people.member_url("admin"), **auth)
    assert response.status_code == 409
    assert "last owner" in response.json()["detail"]
    assert (
        api.patch(people.member_url("admin"), {"role": "member"}, format="json", **auth).status_code
        == 409
    )


def test_a_suspended_tenant_freezes_its_people(api, people):
    Tenant.objects.filter(pk=people.tenant.pk).update(
        status=TenantStatus.SUSPENDED, suspension_reason="billing"
    )
    for name in ("owner", "member"):
        auth = bearer(people.token[name])
        response = api.get(people.url("members/"), **auth)
        assert response.status_code == 403
        assert response.json()["status"] == "suspended"
        assert api.delete(people.member_url("member"), **auth).status_code == 403
    assert people.role("member") == Role.MEMBER


@pytest.mark.parametrize("status", [TenantStatus.FAILED, TenantStatus.DELETING])
def test_a_tenant_that_is_not_open_keeps_its_people(api, people, status):
    Tenant.objects.filter(pk=people.tenant.pk).update(status=status)
    response = api.delete(people.member_url("member"), **bearer(people.token["owner"]))
    assert response.status_code == 409
    assert people.role("member") == Role.MEMBER


# --- the roles of the other tenant endpoints ---------------------------------------------


def test_only_an_owner_deletes_the_tenant(api, people):
    for name in ("admin", "member"):
        response = api.delete(people.url(), **bearer(people.token[name]))
        assert response.status_code == 403
        assert response.json()["detail"]
    assert Tenant.objects.get(pk=people.tenant.pk).status == TenantStatus.ACTIVE


def test_a_member_cannot_export_an_admin_can(api, people):
    from tenants.models import TenantExport

    member, admin = bearer(people.token["member"]), bearer(people.token["admin"])
    response = api.post(people.url("exports/"), **member)
    assert response.status_code == 403
    assert "owner or an admin" in response.json()["detail"]
    assert TenantExport.objects.count() == 0
    missing = people.url(f"exports/{uuid.uuid4()}/")
    assert api.get(missing, **member).status_code == 403
    assert api.get(missing, **admin).status_code == 404  # past the role check: no such export
