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


INVITEE_EMAIL = "invitee.k3vw@canary-mail.example"
INVITEE_PASSWORD = "Invitee pass phrase 4K8W"


async def _history_json(address: str, workflow_id: str) -> str:
    from temporalio.client import Client

    client = await Client.connect(address)
    return (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()


@pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
def test_an_invitation_from_link_to_removal_leaks_no_secret(api, temporal):
    """The owner invites a new address as member; the emailed link is accepted with a
    password; the member sees the tenant in /me/ and reads its status; the member's own
    invitation attempt is refused; the owner removes the member, whose next read is 404.
    No email address, link secret, password or API token is in a log line, in the
    workflow's input or in its history."""
    from orchestration.receivers import invitation_workflow_id
    from tenants.models import Invitation
    from tests.kit import run_async
    from tests.workers import workflow_result

    with Captured() as logs:
        owner = signup(api, email=CANARY_EMAIL, password=CANARY_PASSWORD).json()
        tenant_url = owner["status_url"]
        tenant_id = owner["tenant"]["id"]
        auth = bearer(owner["token"])
        with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
            settled(tenant_id, TenantStatus.ACTIVE)
            invited = api.post(
                f"/api/v1/tenants/{tenant_id}/invitations/",
                {"email": INVITEE_EMAIL, "role": "member"},
                format="json",
                **auth,
            )
            assert invited.status_code == 201, invited.content
            wait_until(
                lambda: any(m.to == [INVITEE_EMAIL] for m in mail.outbox),
                timeout=30,
                what="the invitation email",
            )
            email = next(m for m in mail.outbox if m.to == [INVITEE_EMAIL])
            link = email.body.split("#token=", 1)[1].split()[0]
            accepted = api.post(
                "/api/v1/invitations/accept/",
                {"token": link, "password": INVITEE_PASSWORD},
                format="json",
            )
            assert accepted.status_code == 200, accepted.content
            member_token = accepted.json()["token"]
            member = bearer(member_token)
            me = api.get("/api/v1/me/", **member).json()
            assert [m["tenant"]["id"] for m in me["memberships"]] == [tenant_id]
            assert api.get(tenant_url, **member).json()["status"] == TenantStatus.ACTIVE
            refused = api.post(
                f"/api/v1/tenants/{tenant_id}/invitations/",
                {"email": "another@example.com", "role": "member"},
                format="json",
                **member,
            )
            assert refused.status_code == 403
            removed = api.delete(f"/api/v1/tenants/{tenant_id}/members/{me['id']}/", **auth)
            assert removed.status_code == 204
            assert api.get(tenant_url, **member).status_code == 404
            workflow_id = invitation_workflow_id(Invitation.objects.get().pk)
            assert run_async(workflow_result(temporal, workflow_id))["state"] == "accepted"
            history = run_async(_history_json(temporal, workflow_id))
    secrets = (
        CANARY_EMAIL,
        CANARY_PASSWORD,
        owner["token"],
        INVITEE_EMAIL,
        INVITEE_PASSWORD,
        link,
        member_token,
    )
    for secret in secrets:
        assert secret not in logs.text
        assert secret not in history
    mine = [e for e in logs.entries() if e.get("workflow_id") == workflow_id]
    assert {e.get("activity") for e in mine} >= {"invitation_send"}
