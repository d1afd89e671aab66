import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    return APIClient(HTTP_HOST="localhost")


def signup(api, *, email="ada@example.com", subdomain="acme", password=PASSWORD, **extra):
    body = {
        "email": email,
        "password": password,
        "organization_name": "Acme",
        "subdomain": subdomain,
    }
    return api.post("/api/v1/signup/", {**body, **extra}, format="json")


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
