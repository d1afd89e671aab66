"""Records workflow histories for the replay tests (tests/histories/*.json).

Run it against the code whose histories you want to keep — before changing a workflow:

    RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/orchestration/test_record_histories.py

See docs/versioning.md. In normal test runs it is skipped.
"""

import os
from pathlib import Path

import pytest
from temporalio.client import Client

from orchestration.activities import tenants as steps
from orchestration.receivers import provisioning_workflow_id
from tenants.models import Tenant, TenantStatus
from tenants.schemas import schema_exists
from tenants.services import tenant_create, tenant_request_deletion, tenant_request_provisioning
from tests.orchestration.conftest import BackgroundWorker, _activity_name, run_async, wait_until
from tests.orchestration.test_tenant_lifecycle import fail_after, settled

HISTORIES = Path(__file__).resolve().parent.parent / "histories"

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("RECORD_HISTORIES"), reason="set RECORD_HISTORIES=1 to record"
    ),
    pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas"),
]


async def _save(address: str, workflow_id: str, name: str) -> None:
    client = await Client.connect(address)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())


def test_record(owner, temporal):
    label = os.environ.get("RECORD_HISTORIES_LABEL", "v1")
    ok = tenant_create(name="Acme", subdomain="acme", owner=owner)
    bad = tenant_create(name="Broken", subdomain="broken", owner=owner)
    tenant_request_provisioning(tenant_id=ok.pk)
    with BackgroundWorker(temporal):
        settled(ok.pk, TenantStatus.ACTIVE)
        tenant_request_deletion(tenant_id=ok.pk)
        settled(ok.pk, TenantStatus.DELETED)
    failing = steps.tenant_add_owner_membership
    tenant_request_provisioning(tenant_id=bad.pk)
    with BackgroundWorker(temporal, replace={_activity_name(failing): fail_after(failing)}):
        settled(bad.pk, TenantStatus.FAILED)
    run_async(_save(temporal, provisioning_workflow_id(ok.pk, 1), f"provisioning-ok-{label}"))
    run_async(_save(temporal, provisioning_workflow_id(bad.pk, 1), f"provisioning-failed-{label}"))
    run_async(_save(temporal, f"tenant-delete-{ok.pk}", f"deletion-ok-{label}"))


def test_record_jobs(temporal, settings):
    from accounts.services import token_raw_value, user_register, user_verify_email
    from orchestration.receivers import onboarding_workflow_id
    from orchestration.workflows import TokenCleanupInput, TokenCleanupWorkflow
    from tests.orchestration.conftest import wait_until

    label = os.environ.get("RECORD_HISTORIES_LABEL", "v1")
    user, token = user_register(email="ada@example.com", password="a long passphrase 123")

    async def cleanup() -> str:
        client = await Client.connect(temporal)
        handle = await client.start_workflow(
            TokenCleanupWorkflow.run, TokenCleanupInput(retention_seconds=0, batch_size=2),
            id=f"token-cleanup-{label}", task_queue=f"{settings.TEMPORAL_QUEUE_PREFIX}.jobs",
        )  # fmt: skip
        await handle.result()
        return handle.id

    with BackgroundWorker(temporal, kinds=("jobs",)):
        from django.core import mail

        wait_until(lambda: mail.outbox, timeout=30, what="the verification email")
        user_verify_email(raw_token=token_raw_value(token))
        workflow_id = onboarding_workflow_id(user.pk)

        async def finished():
            client = await Client.connect(temporal)
            return await client.get_workflow_handle(workflow_id).result()

        run_async(finished())
        cleanup_id = run_async(cleanup())
    run_async(_save(temporal, workflow_id, f"onboarding-verified-{label}"))
    run_async(_save(temporal, cleanup_id, f"token-cleanup-{label}"))


def test_record_cancelled(owner, temporal):
    """A provisioning run cancelled while ``create_domain`` runs (held for 2 s)."""
    import time

    from temporalio import activity

    label = os.environ.get("RECORD_HISTORIES_LABEL", "v1")
    real = steps.tenant_create_domain

    @activity.defn(name=_activity_name(real))
    def slow_domain(tenant_id):
        time.sleep(2)
        return real(tenant_id)

    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    tenant_request_provisioning(tenant_id=tenant.pk)
    workflow_id = provisioning_workflow_id(tenant.pk, 1)

    async def cancel() -> None:
        client = await Client.connect(temporal)
        await client.get_workflow_handle(workflow_id).cancel()

    with BackgroundWorker(temporal, replace={_activity_name(real): slow_domain}):
        wait_until(
            lambda: (
                Tenant.objects.get(pk=tenant.pk).status == TenantStatus.PROVISIONING
                and schema_exists(Tenant.objects.get(pk=tenant.pk).schema_name)
            ),
            timeout=30,
            what="the schema to exist",
        )
        time.sleep(0.5)  # inside create_domain now
        run_async(cancel())
        settled(tenant.pk, TenantStatus.FAILED)
        time.sleep(3)  # let the held step end, so the history is complete
    run_async(_save(temporal, workflow_id, f"provisioning-cancelled-{label}"))
