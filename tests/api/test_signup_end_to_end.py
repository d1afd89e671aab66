"""Signup through the API to an active tenant, a welcome email and a verified user."""

import pytest
from django.core import mail
from prometheus_client import REGISTRY

from accounts.models import User
from orchestration.receivers import onboarding_workflow_id
from tenants.models import TenantStatus
from tests.api.conftest import bearer, signup
from tests.kit import run_async, wait_until
from tests.workers import BackgroundWorker, settled, workflow_result

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
VERIFIED = ("tenantflow_onboarding_outcomes_total", {"outcome": "verified"})


def test_signup_then_active_tenant_welcome_email_and_verification(api, temporal):
    response = signup(api)
    assert response.status_code == 202
    body = response.json()
    status_url, token = body["status_url"], body["token"]

    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        # Waited for in the database: polling the status URL itself would meet its throttle.
        settled(body["tenant"]["id"], TenantStatus.ACTIVE, TenantStatus.FAILED)
        final = api.get(status_url, **bearer(token)).json()
        assert final["status"] == TenantStatus.ACTIVE
        assert final["provisioned_at"] is not None
        wait_until(lambda: mail.outbox, timeout=30, what="the welcome email")
        welcome = mail.outbox[0]
        assert welcome.to == ["ada@example.com"]
        raw = welcome.body.split("\n\n")[1].strip()
        verified_before = REGISTRY.get_sample_value(*VERIFIED)
        assert api.post("/api/v1/auth/verify-email/", {"token": raw}).status_code == 200
        user = User.objects.get()
        result = run_async(workflow_result(temporal, onboarding_workflow_id(user.pk)))
    assert result["state"] == "verified"
    assert REGISTRY.get_sample_value(*VERIFIED) == verified_before + 1
    assert user.email_verified_at is not None
    assert api.get("/", HTTP_HOST="acme.localhost").status_code == 200
