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


INVITEE_EMAIL = "invitee.k3vw@canary-mail.example"
INVITEE_PASSWORD = "Invitee pass phrase 4K8W"


async def _history(address: str, workflow_id: str) -> str:
    from temporalio.client import Client

    client = await Client.connect(address)
    return (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()


CANARY_UNKNOWN = "canary.nobody.k3@canary-mail.example"
CANARY_NEW_EMAIL = "canary.moved.w8@canary-mail.example"
CANARY_NEW_PASSWORD = "Canary second phrase 4K2M"


def _history_text(address: str, workflow_id: str) -> str:
    from tests.kit import run_async

    return run_async(_history(address, workflow_id))


@pytest.mark.usefixtures("queue_prefix")
def test_no_secret_of_the_credential_flows_in_a_line_an_input_or_a_history(
    api, temporal, transactional_db
):
    """A canary account resets its password from the emailed token, changes its email,
    lists and revokes its tokens and closes the account; an unknown canary address asks for
    a reset too. No address, password or token of theirs is in any log line, any outbox row
    (workflow id or input) or any recorded run."""
    from accounts.models import User
    from orchestration.models import OutboxEntry

    User.objects.create_user(CANARY_EMAIL, CANARY_PASSWORD)
    secrets = [CANARY_EMAIL, CANARY_UNKNOWN, CANARY_NEW_EMAIL, CANARY_PASSWORD]
    secrets.append(CANARY_NEW_PASSWORD)

    def login(email: str, password: str) -> str:
        answer = api.post("/api/v1/auth/token/", {"email": email, "password": password})
        assert answer.status_code == 200, answer.content
        secrets.append(answer.json()["token"])
        return secrets[-1]

    def emailed_token(index: int) -> str:
        wait_until(lambda: len(mail.outbox) > index, timeout=30, what=f"email {index + 1}")
        secrets.append(mail.outbox[index].body.split("\n\n")[1].strip())
        return secrets[-1]

    with Captured() as logs, BackgroundWorker(temporal, kinds=("jobs",)):
        first = login(CANARY_EMAIL, CANARY_PASSWORD)
        for address in (CANARY_EMAIL, CANARY_UNKNOWN):
            reset = api.post("/api/v1/auth/password-reset/", {"email": address})
            assert reset.status_code == 202
        token = emailed_token(0)
        confirm = {"token": token, "password": CANARY_NEW_PASSWORD}
        assert api.post("/api/v1/auth/password-reset/confirm/", confirm).status_code == 200
        assert api.get("/api/v1/me/", **bearer(first)).status_code == 401
        second = login(CANARY_EMAIL, CANARY_NEW_PASSWORD)
        change = {"email": CANARY_NEW_EMAIL, "password": CANARY_NEW_PASSWORD}
        assert api.post("/api/v1/me/email/", change, **bearer(second)).status_code == 202
        token = emailed_token(1)
        emailed_token(2)  # the notice to the old address carries no token: its text is checked
        secrets.pop()
        done = api.post("/api/v1/auth/email-change/confirm/", {"token": token})
        assert done.status_code == 200
        assert api.get("/api/v1/auth/tokens/", **bearer(second)).status_code == 200
        assert api.post("/api/v1/auth/logout/", **bearer(second)).status_code == 204
        third = login(CANARY_NEW_EMAIL, CANARY_NEW_PASSWORD)
        wrong = {"password": CANARY_PASSWORD}
        assert api.delete("/api/v1/me/", wrong, format="json", **bearer(third)).status_code == 400
        right = {"password": CANARY_NEW_PASSWORD}
        assert api.delete("/api/v1/me/", right, format="json", **bearer(third)).status_code == 204
    rows = list(OutboxEntry.objects.filter(workflow_type="AccountEmailWorkflow"))
    assert len(rows) == 2  # the unknown address's request left none
    stored = " ".join(f"{row.workflow_id} {row.arguments}" for row in rows)
    histories = " ".join(_history_text(temporal, row.workflow_id) for row in rows)
    for secret in secrets:
        assert secret not in logs.text
        assert secret not in stored
        assert secret not in histories


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
            history = run_async(_history(temporal, workflow_id))
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
