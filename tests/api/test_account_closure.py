"""Closing one's account (``DELETE /api/v1/me/``): refused while the only owner of an
organisation that is not deleted, naming it; otherwise memberships, tokens and personal
data gone, the row deleted or (owner of record of a tenant) anonymised."""

import pytest
from axes.models import AccessAttempt
from django.db import connection

from accounts.models import EmailChange, Token, User
from accounts.services.email_change import email_change_request
from tenants.models import Membership, Role, Tenant, TenantStatus
from tests.api.conftest import bearer
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    TenantFactory,
    TokenFactory,
    UserFactory,
)

ME = "/api/v1/me/"
LOGIN = "/api/v1/auth/token/"

pytestmark = pytest.mark.django_db


def close(api, token, password=PASSWORD):
    return api.delete(ME, {"password": password}, format="json", **bearer(token.raw))


@pytest.fixture
def ada():
    user = UserFactory(email="ada@example.com")
    return user, TokenFactory(user=user)


def owner_of(user, **tenant) -> Tenant:
    created = TenantFactory(owner=user, **{"status": TenantStatus.ACTIVE, **tenant})
    MembershipFactory(user=user, tenant=created, role=Role.OWNER)
    return created


def nowhere_in_the_database(text: str) -> bool:
    """Whether ``text`` appears in no row of any table of the public schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(
                f'SELECT 1 FROM "{table}" t WHERE t::text ILIKE %s LIMIT 1',  # noqa: S608
                [f"%{text}%"],
            )
            if cursor.fetchone():
                return False
    return True


@pytest.mark.parametrize(
    "status",
    [TenantStatus.ACTIVE, TenantStatus.PENDING, TenantStatus.FAILED, TenantStatus.SUSPENDED],
)
def test_the_only_owner_of_a_live_tenant_is_refused_with_its_name(api, ada, status):
    user, token = ada
    acme = owner_of(user, subdomain="acme", name="Acme", status=status)
    refused = close(api, token)
    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert "Acme (acme)" in body["detail"]
    assert [t["id"] for t in body["tenants"]] == [str(acme.pk)]
    assert api.get(ME, **bearer(token.raw)).status_code == 200  # nothing changed
    assert Membership.objects.filter(user=user).exists()


def test_an_owner_of_record_without_membership_still_counts(api, ada):
    user, token = ada
    TenantFactory(owner=user, status=TenantStatus.FAILED, subdomain="acme")  # saga removed it
    assert close(api, token).status_code == 409


def test_a_member_only_is_deleted_with_everything_theirs(api, ada, settings):
    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    user, token = ada
    MembershipFactory(user=user, tenant=TenantFactory(status=TenantStatus.ACTIVE))
    email_change_request(user=user, new_email="ada.new@example.com")
    AccessAttempt.objects.create(
        username="ada@example.com", ip_address="10.0.0.1", failures_since_start=1
    )
    assert close(api, token).status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Membership.objects.filter(user_id=user.pk).exists()
    assert not Token.objects.filter(user_id=user.pk).exists()
    assert not EmailChange.objects.exists()
    assert not AccessAttempt.objects.exists()
    assert api.get(ME, **bearer(token.raw)).status_code == 401
    assert api.post(LOGIN, {"email": "ada@example.com", "password": PASSWORD}).status_code == 400


def test_a_co_owned_tenant_passes_to_its_other_owner(api, ada):
    user, token = ada
    shared = owner_of(user, subdomain="shared")
    bob = UserFactory()
    MembershipFactory(user=bob, tenant=shared, role=Role.OWNER)
    assert close(api, token).status_code == 204
    assert Tenant.objects.get(pk=shared.pk).owner_id == bob.pk
    assert not User.objects.filter(pk=user.pk).exists()  # nothing protects the row now


def test_the_owner_of_record_of_a_deleted_tenant_is_anonymised(api, ada):
    user, token = ada
    gone = TenantFactory(owner=user, status=TenantStatus.DELETED, subdomain="gone")
    shared = owner_of(user, subdomain="shared")
    MembershipFactory(user=UserFactory(), tenant=shared, role=Role.OWNER)
    assert close(api, token).status_code == 204
    user.refresh_from_db()  # kept: Tenant.owner protects the row
    assert user.email.endswith("@closed.invalid")
    assert not user.is_active
    assert not user.has_usable_password()
    assert (user.is_staff, user.is_superuser, user.email_verified_at) == (False, False, None)
    assert Tenant.objects.get(pk=gone.pk).owner_id == user.pk
    assert not Membership.objects.filter(user=user).exists()
    assert not Token.objects.filter(user=user).exists()
    assert api.get(ME, **bearer(token.raw)).status_code == 401
    assert nowhere_in_the_database("ada@example.com")


def test_a_wrong_password_is_refused_and_counts_towards_the_lockout(api, ada, settings):
    settings.AXES_FAILURE_LIMIT = 2
    user, token = ada
    wrong = close(api, token, password="not it")
    assert wrong.status_code == 400
    assert wrong.json() == {"password": ["Wrong password."]}
    assert close(api, token, password="not it").status_code == 429
    assert close(api, token).status_code == 429  # locked out, even with the right one
    assert User.objects.filter(pk=user.pk, is_active=True).exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [({}, {"password"}), ({"password": ""}, {"password"}), ({"password": 3}, {"password"})],
)
def test_bad_input_is_400(api, ada, body, fields):
    _, token = ada
    answer = api.delete(ME, body, format="json", **bearer(token.raw))
    assert answer.status_code == 400
    assert set(answer.json()) == fields


def test_closing_is_throttled_per_user_and_reading_is_not(api, ada):
    _, token = ada
    statuses = [close(api, token, password="x").status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]  # test settings: 5/minute
    assert all(api.get(ME, **bearer(token.raw)).status_code == 200 for _ in range(10))


def test_closing_needs_a_token(api):
    assert api.delete(ME, {"password": PASSWORD}, format="json").status_code == 401
