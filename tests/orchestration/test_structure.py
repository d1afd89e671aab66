"""The contracts of the structure: typed starts, onboarding on the tenant's route, progress
written by the activities and read from the database (even with Temporal frozen)."""

import asyncio
import os
import re
import signal
import time

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.test import APIClient
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

import orchestration.workflows as workflows
from core.db import libpq_params
from devstack.localservices import LOCAL_DIR, PROJECT_DIR, TemporalDevServer, free_port
from orchestration.activities.tenants import tenant_step
from orchestration.models import OutboxEntry
from orchestration.outbox import enqueue_start, workflow_type
from orchestration.receivers import on_tenant_provisioning_requested
from orchestration.routing import deployment_tenant_route
from orchestration.workflows import (
    TenantDeletionInput,
    TenantProvisioningWorkflow,
    UserOnboardingWorkflow,
)
from orchestration.workflows.tenant_provisioning import PROVISIONING
from tenants.models import Domain, Tenant, TenantStatus
from tenants.services import (
    account_signup,
    tenant_create,
    tenant_request_provisioning,
    tenant_run_planned,
    tenant_step_done,
)
from tests.kit import run_async, wait_until
from tests.workers import BackgroundWorker

PASSWORD = "correct horse battery staple"


# --- typed start contracts ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_bad_input_raises_in_the_callers_transaction_and_nothing_is_written(owner):
    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    with (
        pytest.raises(ApplicationError, match="attempt must be a positive integer") as bad,
        transaction.atomic(),
    ):
        on_tenant_provisioning_requested(Tenant, tenant=tenant, attempt="2")
    assert (bad.value.type, bad.value.non_retryable) == ("InvalidInput", True)
    assert not OutboxEntry.objects.exists()
    tenant.refresh_from_db()
    assert tenant.workflow_id == ""  # no run planned either


@pytest.mark.django_db
def test_the_input_must_be_the_dataclass_the_workflow_takes(owner):
    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    with (
        pytest.raises(TypeError, match="takes a TenantProvisioningInput, got TenantDeletion"),
        transaction.atomic(),
    ):
        enqueue_start(
            TenantProvisioningWorkflow,
            TenantDeletionInput(tenant_id=str(tenant.pk)),
            workflow_id="x",
            route=deployment_tenant_route(tenant.pk),
        )
    assert not OutboxEntry.objects.exists()


def test_the_type_name_comes_from_the_class():
    assert workflow_type(TenantProvisioningWorkflow) == "TenantProvisioningWorkflow"
    with pytest.raises(TypeError, match=r"not a @workflow\.defn class"):
        workflow_type(PROVISIONING.__class__)


def test_the_readme_table_lists_every_workflow():
    """README's table of workflows has a row for each workflow the project defines (the
    first cell, in backticks), and for no other."""
    rows = re.findall(r"^\| `(\w+Workflow)` \|", (PROJECT_DIR / "README.md").read_text(), re.M)
    assert sorted(rows) == sorted(n for n in workflows.__all__ if n.endswith("Workflow"))


async def _outcome(address: str, workflow_id: str):
    """The run's status and failure cause, once it has closed (within 30 s)."""
    client = await Client.connect(address)
    handle = client.get_workflow_handle(workflow_id)
    try:
        async with asyncio.timeout(30):
            await handle.result()
    except WorkflowFailureError as exc:
        return (await handle.describe()).status, exc.cause
    return (await handle.describe()).status, None


@pytest.mark.usefixtures("queue_prefix")
def test_a_row_whose_input_does_not_decode_fails_its_run_at_once(owner, temporal, transactional_db):
    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    tenant_request_provisioning(tenant_id=tenant.pk)
    row = OutboxEntry.objects.get()
    row.arguments = {"tenant_id": str(tenant.pk), "attempt": "2"}  # written by hand, say
    row.save(update_fields=["arguments"])
    with BackgroundWorker(temporal):
        wait_until(
            lambda: OutboxEntry.objects.get().status == "started", timeout=60, what="the start"
        )
        status, cause = run_async(_outcome(temporal, row.workflow_id))
    assert status == WorkflowExecutionStatus.FAILED
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("InvalidInput", True)
    assert "attempt" in cause.message
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.PENDING  # no step ran


# --- onboarding on the tenant's route -----------------------------------------------------


@pytest.mark.django_db
def test_onboarding_is_routed_like_the_tenant_made_at_signup():
    _, tenant, _ = account_signup(
        email="ada@example.com", password=PASSWORD, organization_name="Acme", subdomain="acme"
    )
    rows = {row.workflow_type: row for row in OutboxEntry.objects.all()}
    onboarding = rows[workflow_type(UserOnboardingWorkflow)]
    provisioning = rows[workflow_type(TenantProvisioningWorkflow)]
    assert onboarding.task_queue == provisioning.task_queue
    assert onboarding.task_queue == deployment_tenant_route(tenant.pk).task_queue
    assert onboarding.fairness_key == str(tenant.pk)


# --- progress: written by the activities, read from the database --------------------------


@pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
def test_the_activities_record_each_step_on_the_tenant(owner, temporal, transactional_db):
    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    tenant_request_provisioning(tenant_id=tenant.pk)
    with BackgroundWorker(temporal):
        tenant = wait_until(
            lambda: Tenant.objects.filter(pk=tenant.pk, status=TenantStatus.ACTIVE).first(),
            timeout=60,
            what="the tenant to be active",
        )
    assert tenant.workflow_id == f"tenant-provision-{tenant.pk}"
    assert tenant.steps_done == tenant.steps_planned == PROVISIONING.step_names
    assert (tenant.current_step, tenant.run_state) == ("", "completed")


def test_steps_recorded_together_keep_the_plans_order_and_name_the_next(owner):
    """How a group of steps records itself: several at once, in any order (the pool claim
    records ``create_schema`` before its group records ``mark_provisioning``), the next step
    current; an activity of another run records nothing."""
    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    tenant_run_planned(tenant_id=tenant.pk, workflow_id="run-1", steps=PROVISIONING.step_names)
    record = {"tenant_id": tenant.pk, "workflow_id": "run-1"}
    tenant_step_done(**record, step="create_schema")
    tenant_step_done(**record, step=["mark_provisioning", "not_a_step"], then="migrate_schema")
    tenant.refresh_from_db()
    assert tenant.steps_done == ["mark_provisioning", "create_schema"]
    assert tenant.current_step == "migrate_schema"
    tenant_step_done(**record, step=["migrate_schema", "create_domain"])
    tenant_step_done(**{**record, "workflow_id": "run-0"}, step=["seed_defaults"], then="x")
    tenant.refresh_from_db()
    assert tenant.steps_done == [
        "mark_provisioning",
        "create_schema",
        "migrate_schema",
        "create_domain",
    ]
    assert tenant.current_step == ""


@pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
def test_a_failed_step_stays_current_and_the_run_is_seen_compensating(
    owner, temporal, transactional_db
):
    @tenant_step
    def tenant_create_domain(tenant_id: str) -> str:  # records itself like the real one
        raise ValidationError("no domain table")

    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    tenant_request_provisioning(tenant_id=tenant.pk)
    with BackgroundWorker(temporal, replace={"tenant_create_domain": tenant_create_domain}):
        tenant = wait_until(
            lambda: Tenant.objects.filter(pk=tenant.pk, status=TenantStatus.FAILED).first(),
            timeout=60,
            what="the tenant to be failed",
        )
    # The step that failed is still the current one; the undos marked the run compensating
    # before the final act marked it failed.
    assert tenant.steps_done == ["mark_provisioning", "create_schema", "migrate_schema"]
    assert (tenant.current_step, tenant.compensating) == ("create_domain", True)
    assert tenant.run_state == "failed"
    assert tenant.last_error.startswith("create_domain: ")
    assert "no domain table" in tenant.last_error


@pytest.mark.temporal  # starts a dev server of its own, to freeze it
@pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")
def test_status_answers_from_the_database_while_temporal_is_frozen(
    owner, settings, transactional_db
):
    """``kill -STOP`` on the Temporal server while a step runs: the status API still answers
    at once, with the current step."""
    server = TemporalDevServer(port=free_port(), log_file=LOCAL_DIR / "temporal-frozen.log")
    server.start()
    blocker = None
    try:
        settings.TEMPORAL_ADDRESS = server.address
        _, tenant, token = account_signup(
            email="ada@example.com", password=PASSWORD, organization_name="Acme", subdomain="acme"
        )
        api = APIClient(HTTP_HOST="localhost")
        blocker = psycopg.connect(**libpq_params())
        # Inserts into the domain table wait: create_domain is held after it has begun.
        blocker.execute(f"LOCK TABLE {Domain._meta.db_table} IN SHARE MODE")
        with BackgroundWorker(server.address):
            wait_until(
                lambda: Tenant.objects.get(pk=tenant.pk).current_step == "create_domain",
                timeout=60,
                what="create_domain to begin",
            )
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                response = api.get(
                    f"/api/v1/tenants/{tenant.pk}/", HTTP_AUTHORIZATION=f"Bearer {token}"
                )
                elapsed = time.monotonic() - started
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            blocker.rollback()
            wait_until(
                lambda: Tenant.objects.filter(pk=tenant.pk, status=TenantStatus.ACTIVE).exists(),
                timeout=60,
                what="the tenant to be active",
            )
    finally:
        if blocker is not None:
            blocker.close()
        server.stop()
    assert response.status_code == 200
    progress = response.json()["progress"]
    assert progress["current_step"] == "create_domain"
    assert progress["steps_done"] == ["mark_provisioning", "create_schema", "migrate_schema"]
    assert progress["state"] == "running"
    # Far below what a call to the frozen server would wait (a client's RPC timeout, 10 s and
    # more), with room for a loaded machine: the answer came from the database.
    assert elapsed < 5.0
