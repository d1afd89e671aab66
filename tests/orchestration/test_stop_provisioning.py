"""Deleting a tenant while it is being provisioned, and cancelling a provisioning run whose
step heartbeats: real PostgreSQL, Temporal, worker and relay. A table lock holds a step
after it has begun, so each test knows exactly where the run is."""

import contextlib
import logging

import psycopg
import pytest
from temporalio.client import WorkflowExecutionStatus

from core.db import libpq_params
from tenants.models import Domain, Membership, SchemaTemplate, Tenant, TenantStatus
from tenants.schemas.create import schema_exists
from tenants.services import account_signup, tenant_request_deletion, tenant_request_provisioning
from tests.factories import PASSWORD
from tests.kit import run_async, wait_until
from tests.workers import (
    BackgroundWorker,
    describe,
    event_types,
    no_first_try,
    settled,
    workflow_result,
)

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")


@contextlib.contextmanager
def table_locked(model):
    """Writes to ``model``'s table (and, in ACCESS EXCLUSIVE mode, reads) wait meanwhile."""
    blocker = psycopg.connect(**libpq_params())
    try:
        blocker.execute(f"LOCK TABLE {model._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        blocker.rollback()
        blocker.close()


def at_step(tenant_id, step: str):
    return wait_until(
        lambda: Tenant.objects.get(pk=tenant_id).current_step == step,
        timeout=60,
        what=f"{step} to begin",
    )


def closed(address: str, workflow_id: str):
    """The run's description once it has closed (the tenant's last write comes a moment
    before the run itself ends)."""
    return wait_until(
        lambda: (
            (d := describe(address, workflow_id)).status != WorkflowExecutionStatus.RUNNING and d
        ),
        timeout=30,
        what=f"{workflow_id} to close",
    )


def signup():
    _, tenant, token = account_signup(
        email="ada@example.com", password=PASSWORD, organization_name="Acme", subdomain="acme"
    )
    return tenant, token


def test_delete_during_provisioning_is_accepted_and_leaves_nothing(temporal, transactional_db):
    from rest_framework.test import APIClient

    tenant, token = signup()
    api = APIClient(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    with BackgroundWorker(temporal):
        with table_locked(Domain):
            at_step(tenant.pk, "create_domain")
            response = api.delete(f"/api/v1/tenants/{tenant.pk}/")
            assert response.status_code == 202, response.json()
            assert response.json()["status"] == "provisioning"  # deletion comes next
        tenant = settled(tenant.pk, TenantStatus.DELETED, timeout=90)
        provisioning = closed(temporal, f"tenant-provision-{tenant.pk}")
    assert not schema_exists(tenant.schema_name)
    assert not Domain.objects.filter(tenant=tenant).exists()
    assert not Membership.objects.filter(tenant=tenant, is_active=True).exists()
    body = api.get(f"/api/v1/tenants/{tenant.pk}/").json()
    assert (body["status"], body["domain"]) == ("deleted", None)
    # How the provisioning run ends depends on when the deletion's cancel reaches it: the
    # blocked step is let finish, and a cancel does not stop a run after its last step (the
    # saga's rule: the tenant is done, nothing is left to stop), which create_domain ...
    # mark_active share as one local activity. Cancelled or completed, the deletion that
    # follows leaves nothing (above); this test failed about one full run in five on
    # asking for cancelled alone.
    assert provisioning.status in (
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.COMPLETED,
    )


def test_a_signup_deleted_at_once_ends_its_provisioning_quietly(temporal, transactional_db, caplog):
    """Deleted before its provisioning began: the run finds the tenant being deleted at its
    first step and ends, completed, with nothing done to undo and nothing logged as an
    error; the deletion leaves nothing."""
    tenant, _ = signup()
    tenant_request_deletion(tenant_id=tenant.pk)  # no worker yet: the tenant is still pending
    caplog.set_level(logging.INFO)
    workflow_id = f"tenant-provision-{tenant.pk}"
    with BackgroundWorker(temporal):
        tenant = settled(tenant.pk, TenantStatus.DELETED, timeout=90)
        provisioning = closed(temporal, workflow_id)
    assert provisioning.status == WorkflowExecutionStatus.COMPLETED
    assert run_async(workflow_result(temporal, workflow_id))["state"] == "superseded"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not schema_exists(tenant.schema_name)
    assert not Domain.objects.filter(tenant=tenant).exists()
    assert not Membership.objects.filter(tenant=tenant, is_active=True).exists()


def test_a_deletion_during_an_early_step_cancels_the_provisioning_run(temporal, transactional_db):
    """Deleted while its schema is being created (the second step, the long way): the
    deletion cancels the provisioning run, which lets the step finish, undoes it and ends
    cancelled; then the deletion goes on."""
    tenant, _ = signup()
    workflow_id = f"tenant-provision-{tenant.pk}"
    requested = "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED"

    with BackgroundWorker(temporal, replace=no_first_try()):
        with table_locked(SchemaTemplate):  # create_schema reads the stored template first
            at_step(tenant.pk, "create_schema")
            tenant_request_deletion(tenant_id=tenant.pk)
            wait_until(
                lambda: requested in event_types(temporal, workflow_id),
                timeout=30,
                what="the deletion to cancel the provisioning run",
            )
        tenant = settled(tenant.pk, TenantStatus.DELETED, timeout=90)
        outcome = closed(temporal, workflow_id)
    assert outcome.status == WorkflowExecutionStatus.CANCELED
    assert not schema_exists(tenant.schema_name)


def test_cancelling_during_a_heartbeating_step_ends_the_run_cancelled(temporal, transactional_db):
    """As docs/operations.md says: the running step (create_schema the long way, on the task
    queue, heartbeating) is let finish, the undos run, the tenant ends ``failed``, and the
    run ends *cancelled*. The step's quick first try (pool or template) finds nothing here,
    as it does where no template can be stored."""
    tenant, _ = signup()
    workflow_id = f"tenant-provision-{tenant.pk}"

    async def cancel():
        from orchestration import client as temporal_client

        client = await temporal_client.connect(address=temporal)
        await client.get_workflow_handle(workflow_id).cancel()

    with BackgroundWorker(temporal, replace=no_first_try()):
        with table_locked(SchemaTemplate):  # create_schema reads the stored template first
            at_step(tenant.pk, "create_schema")
            run_async(cancel())
        tenant = settled(tenant.pk, TenantStatus.FAILED, timeout=90)
        outcome = closed(temporal, workflow_id)
    assert outcome.status == WorkflowExecutionStatus.CANCELED
    assert tenant.steps_done == ["mark_provisioning", "create_schema"]  # it was let finish
    assert tenant.compensating
    assert not schema_exists(tenant.schema_name)  # and undone


def test_provision_again_after_a_run_ended_without_a_step_starts_it_again(
    temporal, transactional_db, admin_client
):
    """A pending tenant whose run was terminated before its first step: the admin's
    *Provision* starts that attempt again, and the tenant becomes active."""
    from orchestration import client as temporal_client
    from tests.factories import TenantFactory
    from tests.workers import relay_for

    tenant = TenantFactory(subdomain="acme")
    tenant_request_provisioning(tenant_id=tenant.pk)
    relay = relay_for(temporal)
    assert relay.relay_once() == 1  # started, but no worker polls its queue yet
    relay.close()
    workflow_id = f"tenant-provision-{tenant.pk}"

    async def terminate():
        client = await temporal_client.connect(address=temporal)
        await client.get_workflow_handle(workflow_id).terminate("by hand")

    run_async(terminate())
    response = admin_client.post(
        "/admin/tenants/tenant/",
        {"action": "provision", "_selected_action": [str(tenant.pk)]},
        HTTP_HOST="localhost",
        follow=True,
    )
    assert "1 queued for provisioning" in " ".join(str(m) for m in response.context["messages"])
    with BackgroundWorker(temporal):
        tenant = settled(tenant.pk, TenantStatus.ACTIVE, TenantStatus.FAILED, timeout=90)
        # Inside: the run's last workflow task needs the worker.
        outcome = closed(temporal, workflow_id)
    assert tenant.status == TenantStatus.ACTIVE
    assert outcome.status == WorkflowExecutionStatus.COMPLETED
