"""A canary signup, provisioned by a worker, leaves its email, password and tokens in no log
line; lines from its activities carry their run and tenant, lines from its requests their
request id."""

import pytest
from django.core import mail

from orchestration.receivers import (
    custom_domain_verification_workflow_id,
    previous_domain_release_workflow_id,
)
from tenants.models import Domain, Tenant, TenantStatus
from tests.api.conftest import bearer, signup
from tests.kit import run_async, wait_until
from tests.test_logs import Captured
from tests.workers import BackgroundWorker, settled, workflow_exists, workflow_result

CANARY_EMAIL = "canary.q7zx@canary-mail.example"
CANARY_PASSWORD = "Canary pass phrase 9Z7Q"


@pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
def test_no_secret_in_any_line_and_each_line_knows_its_run_or_request(
    api, temporal, dns_server, settings
):
    settings.CUSTOM_DOMAIN_VERIFY_INTERVAL = 1
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
            # A new subdomain and a custom domain, verified: the domain's token is no
            # workflow's input or result, and no log line's.
            auth = bearer(api_token)
            moved = api.patch(body["status_url"], {"subdomain": "acme-canary"}, **auth)
            assert moved.status_code == 202, moved.content
            added = api.post(
                f"{body['status_url']}domains/", {"domain": "canary.example.org"}, **auth
            )
            assert added.status_code == 202, added.content
            record = added.json()["record"]
            domain_token = record["value"]
            dns_server.set_txt(record["name"], domain_token)
            domain_id = Domain.objects.get(domain="canary.example.org").pk
            verification_run = custom_domain_verification_workflow_id(domain_id)
            release_run = previous_domain_release_workflow_id(
                Domain.objects.get(domain="acme.localhost").pk
            )
            for workflow_id in (verification_run, release_run):  # started by the relay
                wait_until(
                    lambda w=workflow_id: workflow_exists(temporal, w),
                    timeout=30,
                    what=f"{workflow_id} to start",
                )
            assert run_async(workflow_result(temporal, verification_run))["status"] == "verified"
            histories = [
                run_async(_history(temporal, workflow_id))
                for workflow_id in (verification_run, release_run)
            ]
    text = logs.text
    for secret in (CANARY_EMAIL, CANARY_PASSWORD, api_token, verification, domain_token):
        assert secret not in text
        for history in histories:
            assert secret not in history
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


async def _history(address: str, workflow_id: str) -> str:
    from temporalio.client import Client

    client = await Client.connect(address)
    return (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()
