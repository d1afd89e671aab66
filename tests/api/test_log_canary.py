"""A canary signup, provisioned by a worker, leaves its email, password and tokens in no log
line; lines from its activities carry their run and tenant, lines from its requests their
request id."""

import pytest
from django.core import mail

from tenants.models import Tenant, TenantStatus
from tests.api.conftest import bearer, signup
from tests.kit import wait_until
from tests.test_logs import Captured
from tests.workers import BackgroundWorker, settled

CANARY_EMAIL = "canary.q7zx@canary-mail.example"
CANARY_PASSWORD = "Canary pass phrase 9Z7Q"


@pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
def test_no_secret_in_any_line_and_each_line_knows_its_run_or_request(api, temporal):
    with Captured() as logs:
        api.credentials(HTTP_X_REQUEST_ID="canary-req-1")
        response = signup(api, email=CANARY_EMAIL, password=CANARY_PASSWORD)
        api.credentials()
        assert response.status_code == 202, response.content
        assert response["X-Request-ID"] == "canary-req-1"
        body = response.json()
        api_token = body["token"]
        tenant_id = str(Tenant.objects.get().pk)
        with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
            # Waited for in the database: polling the status URL would meet its throttle.
            settled(tenant_id, TenantStatus.ACTIVE, TenantStatus.FAILED)
            status = api.get(body["status_url"], **bearer(api_token)).json()
            assert status["status"] == TenantStatus.ACTIVE
            wait_until(lambda: mail.outbox, timeout=30, what="the welcome email")
            verification = mail.outbox[0].body.split("\n\n")[1].strip()
            verified = api.post("/api/v1/auth/verify-email/", {"token": verification})
            assert verified.status_code == 200
    text = logs.text
    for secret in (CANARY_EMAIL, CANARY_PASSWORD, api_token, verification):
        assert secret not in text
    entries = logs.entries()  # every line is one JSON object
    steps = [e for e in entries if e.get("activity", "").startswith("tenant_")]
    assert steps, "no line logged inside a tenant activity"
    assert all(e.get("workflow_id") and e.get("run_id") for e in steps)
    assert {e.get("tenant_id") for e in steps} == {tenant_id}
    mine = [e for e in entries if e.get("request_id") == "canary-req-1"]
    assert any(
        e["logger"] == "tenantflow.access" and "/api/v1/signup/" in e["message"] for e in mine
    )
    access = [e for e in entries if e["logger"] == "tenantflow.access"]
    assert all(e.get("request_id") for e in access)


@pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
def test_a_scheduled_deletion_leaves_the_owners_email_in_no_line_input_or_history(
    api, temporal, settings
):
    from orchestration.models import OutboxEntry
    from tenants.models import deletion_grace_workflow_id
    from tests.kit import run_async
    from tests.workers import workflow_history_json

    settings.TENANT_DELETION_GRACE, settings.TENANT_DELETION_REMINDER_BEFORE = 3, 1
    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    with Captured() as logs:
        body = signup(api, email=CANARY_EMAIL, password=CANARY_PASSWORD).json()
        tenant_id = body["tenant"]["id"]
        with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
            settled(tenant_id, TenantStatus.ACTIVE)
            deleted = api.delete(body["status_url"], **bearer(body["token"]))
            assert deleted.json()["status"] == "deletion_scheduled"
            settled(tenant_id, TenantStatus.DELETED)
    emails = [m for m in mail.outbox if "deleted" in m.subject or "deletion" in m.subject]
    assert [m.to for m in emails] == [[CANARY_EMAIL], [CANARY_EMAIL]]  # it did go to them
    history = run_async(workflow_history_json(temporal, deletion_grace_workflow_id(tenant_id, 1)))
    starts = OutboxEntry.objects.filter(workflow_id__startswith="tenant-deletion-grace-")
    for text in (logs.text, history, str(list(starts.values_list("arguments", flat=True)))):
        assert CANARY_EMAIL not in text
        assert "Acme" not in text  # nor the organisation's name
