"""Logins are limited per account and address together (django-axes), on the admin's login
page and on the API's token endpoint, with a clear lockout message."""

from io import StringIO

import pytest
from django.core.management import call_command
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
        ADMIN_LOGIN,
        {"username": email, "password": password, "next": "/admin/"},
        HTTP_HOST="localhost",
        REMOTE_ADDR=ip,
    )


def test_failures_lock_the_account_from_that_address_only(client, settings):
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_FAILURE_LIMIT  # 5, production's default
    admin = UserFactory(email="root@example.com", superuser=True)
    answers = [
        admin_login(client, admin.email, "wrong", ip="10.0.1.1").status_code for _ in range(5)
    ]
    assert answers == [200, 200, 200, 200, 429]  # the fifth failure locks
    locked = admin_login(client, admin.email, PASSWORD, ip="10.0.1.1")  # the right one
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert locked["Retry-After"] == "900"
    # The owner, elsewhere, still logs in; and the locked address may try other accounts.
    assert admin_login(client, admin.email, PASSWORD, ip="10.0.2.1").status_code == 302
    client.logout()
    other = UserFactory(email="ops@example.com", superuser=True)
    assert admin_login(client, other.email, PASSWORD, ip="10.0.1.1").status_code == 302


def test_failures_spread_over_addresses_lock_nothing(client):
    admin = UserFactory(email="root@example.com", superuser=True)
    for n in range(6):
        assert admin_login(client, admin.email, "wrong", ip=f"10.0.1.{n}").status_code == 200
    assert admin_login(client, admin.email, PASSWORD, ip="10.0.1.9").status_code == 302


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(client, settings):
    """A forged ``X-Forwarded-For`` neither spreads one attacker over many addresses nor
    puts the owner's address in the attacker's pair."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    admin = UserFactory(email="root@example.com", superuser=True)
    proxy = "10.0.0.254"

    def via_proxy(password, forwarded):
        return client.post(
            ADMIN_LOGIN,
            {"username": admin.email, "password": password, "next": "/admin/"},
            HTTP_HOST="localhost",
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    for n in range(3):  # the attacker (203.0.113.7) claims to be the owner (198.51.100.1)
        via_proxy("wrong", f"198.51.100.{n}, 203.0.113.7")
    assert via_proxy(PASSWORD, "203.0.113.7").status_code == 429
    assert via_proxy(PASSWORD, "198.51.100.1").status_code == 302


def test_staff_lift_a_lock_by_hand(client):
    admin = UserFactory(email="root@example.com", superuser=True)
    for _ in range(3):
        admin_login(client, admin.email, "wrong")
    assert admin_login(client, admin.email, PASSWORD).status_code == 429
    call_command("axes_reset_username", admin.email, stdout=StringIO())
    assert admin_login(client, admin.email, PASSWORD).status_code == 302


def test_the_api_token_endpoint_locks_too_with_a_json_answer():
    api = APIClient(HTTP_HOST="localhost")
    user = UserFactory(email="ada@example.com")
    for _ in range(3):
        wrong = api.post(
            TOKEN,
            {"email": "ADA@example.com", "password": "nope"},
            format="json",
            REMOTE_ADDR="10.1.0.1",
        )
        assert wrong.status_code in (400, 429)
    locked = api.post(
        TOKEN, {"email": user.email, "password": PASSWORD}, format="json", REMOTE_ADDR="10.1.0.1"
    )
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("Too many failed logins for this account")
    assert "token" not in locked.json()
    elsewhere = api.post(
        TOKEN, {"email": user.email, "password": PASSWORD}, format="json", REMOTE_ADDR="10.1.1.1"
    )
    assert elsewhere.status_code == 200
    assert "token" in elsewhere.json()


def test_a_success_before_the_limit_resets_the_count(client):
    admin = UserFactory(email="root@example.com", superuser=True)
    for _ in range(2):
        admin_login(client, admin.email, "wrong")
    assert admin_login(client, admin.email, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        admin_login(client, admin.email, "wrong")
    assert admin_login(client, admin.email, PASSWORD).status_code == 302
