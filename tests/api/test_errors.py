"""Every error the API answers is JSON with the right status, also where Django itself
answers: a body over the limit, the database down, an unknown path."""

import json

import pytest
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
VALID = {
    "email": "ada@example.com",
    "password": "correct horse battery staple",
    "organization_name": "Acme",
    "subdomain": "acme",
}


@pytest.fixture
def api():
    # Answer as a server would, rather than re-raising the exception into the test.
    return APIClient(HTTP_HOST="localhost", raise_request_exception=False)


def test_a_body_over_the_limit_is_413_json(api, settings):
    body = json.dumps({"email": "a@example.com", "password": "x" * (3 * 1024 * 1024)})
    response = api.post("/api/v1/signup/", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert response.json() == {
        "detail": f"The request body is larger than the limit of {limit} bytes."
    }
    assert len(response.content) < 200


def test_the_database_down_is_503_json_with_retry_after(api, monkeypatch):
    def unavailable(**kwargs):
        raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr("tenants.api.views.account_signup", unavailable)
    response = api.post("/api/v1/signup/", VALID, format="json")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"detail": "The service is unavailable right now; try again shortly."}
    assert "Connection refused" not in response.content.decode()  # no internals


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_is_a_logged_500_json_with_its_request_id(
    api, monkeypatch, settings, caplog, debug
):
    settings.DEBUG = debug  # Django would show its debug page

    def broken(**kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("tenants.api.views.account_signup", broken)
    response = api.post("/api/v1/signup/", VALID, format="json", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error.", "request_id": "req-42"}
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert logged  # the traceback, under the request's id
    assert logged[0].levelname == "ERROR"
    assert getattr(logged[0], "request_id", None) == "req-42"


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError('duplicate key value violates unique constraint "x"'),
        ProgrammingError('relation "nothing" does not exist'),
        DataError("invalid input syntax for type uuid"),
    ],
    ids=type,
)
def test_a_database_error_that_is_no_outage_is_a_500_not_a_503(api, monkeypatch, error):
    def buggy(**kwargs):
        raise error

    monkeypatch.setattr("tenants.api.views.account_signup", buggy)
    response = api.post("/api/v1/signup/", VALID, format="json")
    assert response.status_code == 500
    assert response.json()["detail"] == "Internal server error."
    assert "Retry-After" not in response


def test_a_dropped_connection_is_an_outage(api, monkeypatch):
    def dropped(**kwargs):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr("tenants.api.views.account_signup", dropped)
    response = api.post("/api/v1/signup/", VALID, format="json")
    assert (response.status_code, response["Retry-After"]) == (503, "5")


def test_errors_are_json_under_debug_too(api, settings):
    settings.DEBUG = True
    unknown = api.get("/api/v1/nothing-here/")
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not found."})
    body = json.dumps({"email": "a@example.com", "password": "x" * (3 * 1024 * 1024)})
    big = api.post("/api/v1/signup/", body, content_type="application/json")
    assert big.status_code == 413
    assert big.json()["detail"].startswith("The request body is larger than the limit")
    assert len(big.content) < 200
    admin = api.get("/admin/nothing-here/")
    assert admin["Content-Type"].startswith("text/html")  # the admin keeps Django's pages


def test_an_unknown_path_is_404_json(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    unknown_host = APIClient(HTTP_HOST="nobody.localhost", raise_request_exception=False)
    assert unknown_host.get("/").json() == {"detail": "Not found."}


def test_the_database_down_is_503_json_also_in_debug(api, monkeypatch, settings):
    settings.DEBUG = True  # Django would show its debug page instead of calling handler500

    def unavailable(**kwargs):
        raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr("tenants.api.views.account_signup", unavailable)
    response = api.post("/api/v1/signup/", {"email": "x"}, format="json")
    assert response.status_code in (400, 503)  # invalid input is refused before any SQL
    response = api.post("/api/v1/signup/", VALID, format="json")
    assert (response.status_code, response["Retry-After"]) == (503, "5")


def test_a_tenant_host_lookup_that_meets_an_outage_is_503(api, monkeypatch):
    def unavailable(*, host):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr("tenants.middleware.domain_for_host", unavailable)
    client = APIClient(HTTP_HOST="acme.localhost", raise_request_exception=False)
    response = client.get("/")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The service is unavailable")
