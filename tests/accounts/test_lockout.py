"""Logins are limited per account and per address (django-axes), on the admin's login page
and on the API's token endpoint, with a clear lockout message."""

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
ADMIN_LOGIN = "/admin/login/"
TOKEN = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _limits(settings, monkeypatch):
    settings.AXES_FAILURE_LIMIT = 3
    # The API's own per-IP throttle would answer 429 first; here it must not interfere.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "1000/minute"})


def admin_login(client, email, password, ip="10.0.0.1"):
    return client.post(
        ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"},
        HTTP_HOST="localhost", REMOTE_ADDR=ip,
    )  # fmt: skip


def test_the_admin_locks_an_account_after_repeated_failures(client):
    admin = UserFactory(email="root@example.com", superuser=True)
    for n in range(3):  # each failure from a different address: the account is what counts
        response = admin_login(client, admin.email, "wrong", ip=f"10.0.1.{n}")
        assert response.status_code in (200, 429)
    locked = admin_login(client, admin.email, PASSWORD, ip="10.0.2.1")  # the right one
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert locked["Retry-After"] == "900"
    other = UserFactory(email="ops@example.com", superuser=True)
    assert admin_login(client, other.email, PASSWORD, ip="10.0.3.1").status_code == 302


def test_the_admin_locks_an_address_trying_many_accounts(client):
    UserFactory(email="root@example.com", superuser=True)
    for n in range(3):
        admin_login(client, f"guess{n}@example.com", "wrong", ip="10.9.9.9")
    assert admin_login(client, "root@example.com", PASSWORD, ip="10.9.9.9").status_code == 429
    assert admin_login(client, "root@example.com", PASSWORD, ip="10.8.8.8").status_code == 302


def test_the_api_token_endpoint_locks_too_with_a_json_answer():
    api = APIClient(HTTP_HOST="localhost")
    user = UserFactory(email="ada@example.com")
    for n in range(3):
        wrong = api.post(TOKEN, {"email": "ADA@example.com", "password": "nope"},
                         format="json", REMOTE_ADDR=f"10.1.0.{n}")  # fmt: skip
        assert wrong.status_code in (400, 429)
    locked = api.post(TOKEN, {"email": user.email, "password": PASSWORD}, format="json",
                      REMOTE_ADDR="10.1.1.1")  # fmt: skip
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Too many failed logins for this account")
    assert "token" not in locked.json()


def test_a_success_before_the_limit_resets_the_count(client):
    admin = UserFactory(email="root@example.com", superuser=True)
    for _ in range(2):
        admin_login(client, admin.email, "wrong")
    assert admin_login(client, admin.email, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        admin_login(client, admin.email, "wrong")
    assert admin_login(client, admin.email, PASSWORD).status_code == 302
