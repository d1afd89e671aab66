"""The OpenAPI schema is the API's contract: it is valid OpenAPI 3, and requests generated
from it (schemathesis, every check) get the answers it documents — valid data accepted,
invalid data refused, every status and body shape described.

In process, through the WSGI app, against the test database; each generated request runs in
a savepoint rolled back afterwards, so every request meets the same data (one user, their
token and their tenant) and the run is deterministic. Throttling is raised out of the way
(429 is documented, and tested in tests/api/test_signup.py).
"""

import tomllib

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from rest_framework.throttling import ScopedRateThrottle

from config.wsgi import application
from devstack.localservices import PROJECT_DIR
from tenants.models import Role
from tests.factories import MembershipFactory, TenantFactory, TokenFactory

SCHEMATHESIS_TOML = PROJECT_DIR / "schemathesis.toml"


def contract_config() -> schemathesis.Config:
    """The project's schemathesis.toml with every check on. Its signup exception stays: even
    on a fresh database a generated subdomain can be a reserved name ("status") or a password
    one Django's validators refuse as common, rules no schema pattern can state."""
    settings = tomllib.loads(SCHEMATHESIS_TOML.read_text())
    return schemathesis.Config.from_dict({**settings, "checks": {"enabled": True}})


# What an owner's action on a tenant can be refused with.
REFUSALS = {"401", "403", "404", "409", "429", "503"}
# The error answers of a read about a tenant; of a change with a JSON body; of a public call.
READ = {"401", "403", "404", "429", "503"}
CHANGE = READ | {"400", "409", "413"}
PUBLIC = {"400", "413", "429", "503"}


def test_the_schema_is_valid_openapi_3_and_documents_every_error_answer():
    schema = SchemaGenerator(urlconf="config.urls_public").get_schema(request=None, public=True)
    validate_schema(schema)
    operations = {
        f"{method.upper()} {path}": set(operation["responses"])
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert operations == {
        "POST /api/v1/signup/": {"202", "400", "413", "429", "503"},
        "POST /api/v1/auth/token/": {"200", "400", "413", "429", "503"},
        "POST /api/v1/auth/verify-email/": {"200", "400", "413", "429", "503"},
        "POST /api/v1/auth/verify-email/resend/": {"202", "400", "413", "429", "503"},
        "POST /api/v1/auth/logout/": {"204", "401", "503"},
        "POST /api/v1/auth/logout-all/": {"204", "401", "503"},
        "GET /api/v1/auth/tokens/": {"200", "401", "503"},
        "POST /api/v1/auth/password-reset/": {"202", "400", "413", "429", "503"},
        "POST /api/v1/auth/password-reset/confirm/": {"200", "400", "413", "429", "503"},
        "POST /api/v1/auth/email-change/confirm/": {"200", "400", "413", "429", "503"},
        "GET /api/v1/me/": {"200", "401", "503"},
        "DELETE /api/v1/me/": {"204", "400", "401", "409", "413", "429", "503"},
        "POST /api/v1/me/email/": {"202", "400", "401", "413", "429", "503"},
        "POST /api/v1/tenants/": {"202", "400", "401", "409", "413", "429", "503"},
        "GET /api/v1/tenants/{tenant_id}/": {"200", "401", "403", "404", "429", "503"},
        "DELETE /api/v1/tenants/{tenant_id}/": {"202", *REFUSALS},
        "POST /api/v1/tenants/{tenant_id}/restore/": {"200", *REFUSALS},
        "PATCH /api/v1/tenants/{tenant_id}/": {"202", "400", "413", *REFUSALS},
        "GET /api/v1/tenants/{tenant_id}/domains/": {"200", "401", "403", "404", "429", "503"},
        "POST /api/v1/tenants/{tenant_id}/domains/": {"202", "400", "413", *REFUSALS},
        "GET /api/v1/tenants/{tenant_id}/domains/{domain}/": {
            "200",
            "401",
            "403",
            "404",
            "429",
            "503",
        },
        "DELETE /api/v1/tenants/{tenant_id}/domains/{domain}/": {"204", *REFUSALS},
        "POST /api/v1/tenants/{tenant_id}/exports/": {"202", *REFUSALS},
        "GET /api/v1/tenants/{tenant_id}/exports/{export_id}/": {
            "200",
            "401",
            "403",
            "404",
            "429",
            "503",
        },
        "GET /api/v1/exports/{token}/": {"200", "404", "410", "503"},
        "GET /api/v1/tenants/{tenant_id}/members/": {"200"} | READ,
        "PATCH /api/v1/tenants/{tenant_id}/members/{user_id}/": {"200"} | CHANGE,
        "DELETE /api/v1/tenants/{tenant_id}/members/{user_id}/": {"204", "409"} | READ,
        "POST /api/v1/tenants/{tenant_id}/ownership/": {"200"} | CHANGE,
        "GET /api/v1/tenants/{tenant_id}/invitations/": {"200"} | READ,
        "POST /api/v1/tenants/{tenant_id}/invitations/": {"201"} | CHANGE,
        "DELETE /api/v1/tenants/{tenant_id}/invitations/{invitation_id}/": {"204", "409"} | READ,
        "POST /api/v1/invitations/accept/": {"200", "401", "403", "409"} | PUBLIC,
    }


@pytest.fixture
def in_test_transaction():
    """Requests through the WSGI app stay in the test's transaction: like Django's test
    client, do not close the connection (which would roll the test's data back) around each
    request."""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    yield
    for signal in signals:
        signal.connect(close_old_connections)


@pytest.fixture
def caller(db, in_test_transaction, monkeypatch):
    monkeypatch.setattr(
        ScopedRateThrottle,
        "THROTTLE_RATES",
        dict.fromkeys(ScopedRateThrottle.THROTTLE_RATES, "100000/minute"),
    )
    token = TokenFactory()
    MembershipFactory(user=token.user, tenant=TenantFactory(owner=token.user), role=Role.OWNER)
    return {"Authorization": f"Bearer {token.raw}"}


# Loaded when the module is (the schema view reads no database); schemathesis's lazy loader
# (``from_fixture``) does not run under pytest 9.
contract = schemathesis.openapi.from_wsgi("/api/schema/", application, config=contract_config())


@contract.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    # The fixture is meant to be shared: each input runs in its own savepoint.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_requests_generated_from_the_schema_get_the_answers_it_documents(case, caller):
    with transaction.atomic():
        response = case.call(headers=caller)
        transaction.set_rollback(True)
    case.validate_response(response, headers=caller)


def test_the_export_request_documents_its_in_flight_limit():
    schema = SchemaGenerator(urlconf="config.urls_public").get_schema(request=None, public=True)
    answer = schema["paths"]["/api/v1/tenants/{tenant_id}/exports/"]["post"]["responses"]["429"]
    assert "TENANT_EXPORTS_IN_FLIGHT" in answer["description"]
    assert answer["headers"] == {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
