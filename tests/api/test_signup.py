import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Token, TokenPurpose, User
from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import (
    TenantProvisioningWorkflow,
    UserOnboardingWorkflow,
)
from tenants.models import Membership, Role, Tenant, TenantStatus
from tests.api.conftest import bearer, signup
from tests.factories import PASSWORD, UserFactory

TENANT_PROVISIONING = workflow_type(TenantProvisioningWorkflow)
USER_ONBOARDING = workflow_type(UserOnboardingWorkflow)

pytestmark = pytest.mark.django_db


def test_signup_answers_202_with_user_tenant_token_and_status_url(api):
    response = signup(api)
    assert response.status_code == 202, response.json()
    body = response.json()
    tenant = Tenant.objects.get()
    user = User.objects.get()
    assert body["user"] == {"id": str(user.pk), "email": "ada@example.com"}
    assert body["tenant"] == {
        "id": str(tenant.pk),
        "name": "Acme",
        "subdomain": "acme",
        "status": "pending",
        "domain": "acme.localhost",
    }
    assert body["status_url"] == f"/api/v1/tenants/{tenant.pk}/"
    assert api.get(body["status_url"], **bearer(body["token"])).status_code == 200
    # One transaction made all of it, and recorded the two workflow starts.
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.OWNER
    assert Token.objects.filter(user=user, purpose=TokenPurpose.EMAIL_VERIFICATION).count() == 1
    assert Token.objects.filter(user=user, purpose=TokenPurpose.API).count() == 1
    assert set(OutboxEntry.objects.values_list("workflow_type", flat=True)) == {
        TENANT_PROVISIONING,
        USER_ONBOARDING,
    }
    assert tenant.status == TenantStatus.PENDING


def test_signup_never_contacts_temporal(api, settings):
    settings.TEMPORAL_ADDRESS = "127.0.0.1:1"  # nothing listens: a request that tried would fail
    assert signup(api).status_code == 202


def test_field_errors_are_400_and_nothing_is_written(api):
    response = signup(api, email="not-an-email", subdomain="-bad-", password="123")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"email", "subdomain", "password"}
    assert not User.objects.exists()
    assert not OutboxEntry.objects.exists()


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("123", False),
        ("password", False),
        ("ada@example.com", False),
        ("x" * 7, False),
        ("a sixty-four character passphrase is long enough for anyone!!!!", True),
    ],
)
def test_password_rules_are_djangos(api, password, ok):
    response = signup(api, password=password)
    assert (response.status_code == 202) is ok, response.json()
    if not ok:
        assert "password" in response.json()


@pytest.mark.parametrize("subdomain", ["www", "public", "pg-x", "a_b", "a" * 64, 'x";--', "-a"])
def test_reserved_or_malformed_subdomain_is_400(api, subdomain):
    response = signup(api, subdomain=subdomain)
    assert response.status_code == 400
    assert "subdomain" in response.json()


def test_taken_subdomain_in_any_case_is_400(api):
    assert signup(api, subdomain="acme").status_code == 202
    response = signup(api, email="bob@example.com", subdomain="ACME")
    assert response.status_code == 400
    assert response.json() == {"subdomain": ["This subdomain is taken."]}
    assert User.objects.count() == 1  # bob's user rolled back with the rest


def test_taken_email_gets_the_same_words_whatever_the_case(api):
    assert signup(api, email="ada@example.com").status_code == 202
    response = signup(api, email="ADA@Example.com", subdomain="other")
    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    assert "cannot be used to sign up" in response.json()["email"][0]


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[]",
        "null",
        '{"email": 1}',
        '{"email": "a@b.c", "password": null}',
        '{"email": "\\u0000@x.io", "password": "x", "organization_name": "\\u0000", '
        '"subdomain": "a"}',
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
    ],
)
def test_unexpected_input_is_400_not_500(api, payload):
    response = api.post("/api/v1/signup/", payload, content_type="application/json")
    assert response.status_code == 400


def test_signup_is_rate_limited(api):
    codes = [
        signup(api, email=f"u{i}@example.com", subdomain=f"s{i}").status_code for i in range(9)
    ]
    assert codes[:8] == [202] * 8
    assert codes[8] == 429


def _race(first: tuple[str, str], second: tuple[str, str]) -> list:
    """Two signups (email, subdomain) released at the same moment; their responses."""
    barrier = threading.Barrier(2)
    results = []

    def attempt(email, subdomain):
        client = APIClient(HTTP_HOST="localhost")
        barrier.wait()
        try:
            results.append(signup(client, email=email, subdomain=subdomain))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=pair) for pair in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in results) == [202, 400], [r.content for r in results]
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_same_subdomain_different_case_make_one_tenant():
    results = _race(("a@example.com", "race"), ("b@example.com", "RACE"))
    assert Tenant.objects.count() == 1
    assert OutboxEntry.objects.filter(workflow_type=TENANT_PROVISIONING).count() == 1
    loser = next(r for r in results if r.status_code == 400)
    assert loser.json() == {"subdomain": ["This subdomain is taken."]}


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_same_email_make_one_account_and_a_400():
    results = _race(("same@example.com", "first"), ("SAME@example.com", "second"))
    assert User.objects.count() == Tenant.objects.count() == 1
    loser = next(r for r in results if r.status_code == 400)
    assert list(loser.json()) == ["email"]


def test_taken_email_is_told_only_when_every_other_field_is_valid(api):
    assert signup(api, email="ada@example.com", subdomain="acme").status_code == 202
    # A probe pairing emails with a known-taken subdomain learns nothing about them.
    taken = signup(api, email="ada@example.com", subdomain="acme").json()
    unknown = signup(api, email="nobody@example.com", subdomain="acme").json()
    assert taken == unknown == {"subdomain": ["This subdomain is taken."]}
    weak = signup(api, email="ada@example.com", subdomain="free", password="123").json()
    assert list(weak) == ["password"]
    assert User.objects.count() == 1


def test_login_token_and_me(api):
    signup(api)
    bad = api.post("/api/v1/auth/token/", {"email": "ada@example.com", "password": "nope"})
    unknown = api.post("/api/v1/auth/token/", {"email": "zed@example.com", "password": "nope"})
    assert bad.status_code == unknown.status_code == 400
    assert bad.json() == unknown.json()  # no hint which emails exist
    good = api.post("/api/v1/auth/token/", {"email": "ada@example.com", "password": PASSWORD})
    assert good.status_code == 200
    as_typed = api.post("/api/v1/auth/token/", {"email": "Ada@EXAMPLE.com", "password": PASSWORD})
    assert as_typed.status_code == 200  # emails are matched in any letter case
    # An address saved with capitals (through an admin form, say) logs in too.
    UserFactory(email="placeholder@example.com")  # password: PASSWORD
    User.objects.filter(email="placeholder@example.com").update(email="Bob@Example.com")
    bob = api.post("/api/v1/auth/token/", {"email": "bob@example.com", "password": PASSWORD})
    assert bob.status_code == 200
    me = api.get("/api/v1/me/", **bearer(good.json()["token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
    assert me.json()["email_verified"] is False
    assert [(m["role"], m["tenant"]["subdomain"]) for m in me.json()["memberships"]] == [
        ("owner", "acme")
    ]


def test_login_is_rate_limited(api):
    codes = [
        api.post("/api/v1/auth/token/", {"email": "x@example.com", "password": "p"}).status_code
        for _ in range(6)
    ]
    assert codes == [400] * 5 + [429]


def test_bad_bearer_tokens_are_401(api):
    assert api.get("/api/v1/me/").status_code == 401
    assert api.get("/api/v1/me/", **bearer("nonsense")).status_code == 401
    assert api.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer a b").status_code == 401


def test_verify_email(api):
    from accounts.services import token_raw_value

    signup(api)
    raw = token_raw_value(Token.objects.get(purpose=TokenPurpose.EMAIL_VERIFICATION))
    assert api.post("/api/v1/auth/verify-email/", {"token": "wrong"}).status_code == 400
    response = api.post("/api/v1/auth/verify-email/", {"token": raw})
    assert response.status_code == 200
    assert User.objects.get().email_verified_at is not None
    assert OutboxEntry.objects.filter(kind="signal", workflow_type="email_verified").count() == 1
    assert api.post("/api/v1/auth/verify-email/", {"token": raw}).status_code == 400  # used


def test_openapi_schema_and_docs(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/signup/" in text
    assert "/api/v1/tenants/{tenant_id}/" in text
    assert api.get("/api/schema/docs/").status_code == 200


def test_a_taken_email_costs_a_password_hash_like_a_new_one(api, monkeypatch):
    """No timing oracle: with a taken subdomain, a registered and an unregistered email both
    hash the password once (the costly part), so the answers take the same time."""
    from django.contrib.auth.hashers import MD5PasswordHasher

    hashed = []
    real_encode = MD5PasswordHasher.encode

    def counting(self, password, salt):
        hashed.append(password)
        return real_encode(self, password, salt)

    assert signup(api).status_code == 202
    monkeypatch.setattr(MD5PasswordHasher, "encode", counting)
    registered = signup(api, email="ada@example.com", subdomain="acme")
    assert (registered.status_code, len(hashed)) == (400, 1)
    unregistered = signup(api, email="bo@example.com", subdomain="acme")
    assert (unregistered.status_code, len(hashed)) == (400, 2)
    assert registered.json() == {"subdomain": ["This subdomain is taken."]} == unregistered.json()


@pytest.mark.parametrize("field", ["organization_name", "subdomain", "password"])
def test_a_number_is_not_text(api, field):
    """The schema says string; DRF's CharField would have turned 12345678 into "12345678"."""
    response = signup(api, **{field: 12345678})
    assert response.status_code == 400
    assert response.json()[field] == ["Not a valid string."]
    assert not Tenant.objects.exists()


def test_only_ascii_is_lower_cased_in_a_subdomain(api):
    """The Kelvin sign (U+212A) lower-cases to an ASCII "k"; it is not a letter of a DNS
    label, so it is refused, as the schema's pattern says."""
    response = signup(api, subdomain="\u212acme")
    assert response.status_code == 400
    assert "subdomain" in response.json()
    assert signup(api, subdomain="ACME").json()["tenant"]["subdomain"] == "acme"
