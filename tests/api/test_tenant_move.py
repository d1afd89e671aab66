"""Moving a tenant to another database (TenantMoveWorkflow), with the real worker, relay,
PostgreSQL databases and Temporal dev server: its rows and host follow it, its old schema
goes; a failure, a cancel or a killed worker leaves it in one place, serving."""

import signal

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django_tenants.utils import tenant_context
from psycopg import sql
from temporalio.client import Client

from orchestration.activities import moves as steps
from tenants.models import (
    Role,
    SuspensionReason,
    Tenant,
    TenantBeingMoved,
    TenantStatus,
    move_workflow_id,
)
from tenants.services import tenant_reactivate, tenant_seed_defaults, tenant_suspend
from tenants.services.domains import domain_create_primary
from tenants.services.moves import MoveMismatch, MoveRefused, tenant_move_request
from tenants.workspace.models import Project, Task
from tests.factories import MembershipFactory, TokenFactory
from tests.kit import run_async, wait_until
from tests.workers import SHARDS, BackgroundWorker, fail_instead, stand_in

pytestmark = pytest.mark.usefixtures("queue_prefix")
MOVE_STEPS = ["move_hold", "move_copy", "move_verify", "move_switch"]


@pytest.fixture
def acme(active_tenant, owner, settings):
    """An active tenant in ``default`` with its schema, some rows, and a member's token."""
    settings.TENANT_MOVE_DROP_AFTER = 0
    tenant = active_tenant("acme")
    domain_create_primary(tenant_id=tenant.pk)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    tenant_seed_defaults(tenant_id=tenant.pk)
    with tenant_context(tenant):
        apollo = Project.objects.create(name="Apollo")
        Task.objects.bulk_create(Task(project=apollo, title=f"step {n}") for n in range(500))
    tenant.token = TokenFactory(user=owner).raw
    return tenant


def schema_in(alias: str, name: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def rows(alias: str, schema: str, table: str) -> int:
    with connections[alias].cursor() as cursor:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        cursor.execute(query)
        return cursor.fetchone()[0]


def served(api, tenant) -> dict:
    response = api.get("/", HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {tenant.token}")
    assert response.status_code == 200, response.content
    return response.json()


def moved(tenant_id, to: str, *, timeout: float = 60) -> Tenant:
    def done():
        tenant = Tenant.objects.get(pk=tenant_id)
        return tenant if tenant.database == to and not tenant.moved_from else None

    return wait_until(done, timeout=timeout, what=f"the tenant moved to {to}, old schema gone")


def abandoned(tenant_id, *, timeout: float = 60) -> Tenant:
    def done():
        tenant = Tenant.objects.get(pk=tenant_id)
        undone = not tenant.move_to and tenant.status == TenantStatus.ACTIVE
        return tenant if undone and tenant.last_error else None  # the final act recorded it

    return wait_until(done, timeout=timeout, what="the move undone")


def test_a_tenant_moves_with_its_rows_and_host_and_its_old_schema_goes(api, acme, temporal):
    before = served(api, acme)
    assert before["database"] == "default"
    tenant_move_request(tenant=acme, to="tenants2")
    with BackgroundWorker(temporal, kinds=("tenant",)):
        tenant = moved(acme.pk, "tenants2")
    assert tenant.status == TenantStatus.ACTIVE
    assert tenant.suspension_reason == ""
    assert tenant.steps_done == MOVE_STEPS
    assert tenant.workflow_id == move_workflow_id(acme.pk, 1)
    assert rows("tenants2", acme.schema_name, "workspace_task") == 500
    assert rows("tenants2", acme.schema_name, "workspace_project") == 2
    assert not schema_in("default", acme.schema_name)
    after = served(api, acme)
    assert after["database"] == "tenants2"
    assert after["projects"] == before["projects"] == 2
    with tenant_context(tenant):  # writes go to the new place; ids go on from the old ones
        project = Project.objects.create(name="Gemini")
        assert project.pk > Project.objects.get(name="Apollo").pk
    assert rows("tenants2", acme.schema_name, "workspace_project") == 3


def test_the_old_schema_is_kept_until_the_delay_and_a_second_move_waits_for_it(
    api, acme, temporal, settings
):
    settings.TENANT_MOVE_DROP_AFTER = 3600
    tenant_move_request(tenant=acme, to="tenants2")
    with BackgroundWorker(temporal, kinds=("tenant",)):
        tenant = wait_until(
            lambda: Tenant.objects.filter(pk=acme.pk, database="tenants2").first(),
            timeout=60,
            what="the switch",
        )
    assert tenant.moved_from == "default"
    assert schema_in("default", acme.schema_name)  # kept, not served
    assert served(api, acme)["database"] == "tenants2"
    with pytest.raises(MoveRefused, match="old schema in 'default' is dropped at"):
        tenant_move_request(tenant=tenant, to="default")


def test_a_move_whose_copy_differs_is_undone_and_the_tenant_serves_where_it_was(
    api, acme, temporal
):
    tenant_move_request(tenant=acme, to="tenants2")
    replace = {steps.tenant_move_verify.__name__: fail_instead(steps.tenant_move_verify)}
    with BackgroundWorker(temporal, kinds=("tenant",), replace=replace):
        tenant = abandoned(acme.pk)
    assert tenant.database == "default"
    assert tenant.suspension_reason == ""
    assert "Move failed: move_verify" in tenant.last_error
    assert not schema_in("tenants2", acme.schema_name)  # the copy was dropped
    assert rows("default", acme.schema_name, "workspace_task") == 500
    assert served(api, acme)["database"] == "default"


def test_a_cancelled_move_is_undone(api, acme, temporal):
    tenant_move_request(tenant=acme, to="tenants2")

    async def cancel():
        client = await Client.connect(temporal)
        await client.get_workflow_handle(move_workflow_id(acme.pk, 1)).cancel()

    def slow(work):
        def body(tenant_id):
            wait_until(lambda: cancelled, timeout=30, what="the cancel")
            return work(tenant_id)

        return body

    cancelled = []
    copy = steps.tenant_move_copy
    replace = {copy.__name__: stand_in(copy)(slow(copy))}
    with BackgroundWorker(temporal, kinds=("tenant",), replace=replace):
        wait_until(
            lambda: Tenant.objects.get(pk=acme.pk).steps_done == ["move_hold"],
            timeout=30,
            what="the hold (the copy waits for the cancel)",
        )
        run_async(cancel())
        cancelled.append(True)
        tenant = abandoned(acme.pk)
    assert tenant.database == "default"
    assert "cancelled" in tenant.last_error
    assert not schema_in("tenants2", acme.schema_name)
    assert served(api, acme)["database"] == "default"


def test_a_worker_killed_mid_copy_leaves_the_tenant_in_one_place(
    acme, start_worker, prefix, settings
):
    settings.TEMPORAL_QUEUE_PREFIX, settings.TEMPORAL_QUEUE_SHARDS = prefix, SHARDS
    # Enough rows that the copy takes a moment.
    with connections["default"].cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (project_id, title, done, created_at) "
                "SELECT (SELECT min(id) FROM {}), 'bulk ' || n, false, now() "
                "FROM generate_series(1, 300000) n"
            ).format(
                sql.Identifier(acme.schema_name, "workspace_task"),
                sql.Identifier(acme.schema_name, "workspace_project"),
            )
        )
    environment = {"TENANT_MOVE_DROP_AFTER": "0"}
    tenant_move_request(tenant=acme, to="tenants2")
    worker, _ = start_worker(**environment)
    wait_until(
        lambda: Tenant.objects.get(pk=acme.pk).current_step == "move_copy",
        timeout=60,
        what="the copy to begin",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    held = Tenant.objects.get(pk=acme.pk)
    assert held.database == "default"  # one place: not switched
    assert (held.status, held.suspension_reason) == (TenantStatus.SUSPENDED, "moving")
    start_worker(**environment)
    tenant = moved(acme.pk, "tenants2", timeout=120)
    assert tenant.status == TenantStatus.ACTIVE
    assert rows("tenants2", acme.schema_name, "workspace_task") == 300500
    assert not schema_in("default", acme.schema_name)


# --- refusals: nothing changes -------------------------------------------------------------


def test_moves_that_cannot_be_made_are_refused(acme, owner):
    from django.core.exceptions import ValidationError

    from tests.factories import TenantFactory

    with pytest.raises(ValidationError, match="already in 'default'"):
        tenant_move_request(tenant=acme, to="default")
    with pytest.raises(ValidationError, match="'eu9' is not a tenant database"):
        tenant_move_request(tenant=acme, to="eu9")
    pending = TenantFactory(owner=owner)
    with pytest.raises(MoveRefused, match="is pending: only an active or suspended"):
        tenant_move_request(tenant=pending, to="tenants2")
    with pytest.raises(TenantBeingMoved):  # "moving" is a move's own reason
        tenant_suspend(tenant=acme, reason=SuspensionReason.MOVING)
    assert Tenant.objects.get(pk=acme.pk).moves == 0
    tenant_move_request(tenant=acme, to="tenants2")  # (no worker: it stays requested)
    with pytest.raises(MoveRefused, match="is being moved to 'tenants2'"):
        tenant_move_request(tenant=acme, to="tenants2")


def test_a_suspension_for_a_move_is_not_ended_by_hand(acme):
    from tenants.services.moves import tenant_move_hold

    tenant_move_request(tenant=acme, to="tenants2")
    tenant_move_hold(tenant_id=acme.pk)
    with pytest.raises(TenantBeingMoved, match="is being moved to 'tenants2'"):
        tenant_reactivate(tenant=acme)
    with pytest.raises(CommandError, match="is being moved"):
        call_command("tenant_reactivate", str(acme.pk))


def test_the_move_command_refuses_with_a_clear_error(acme):
    with pytest.raises(CommandError, match="'eu9' is not a tenant database"):
        call_command("tenant_move", str(acme.pk), "--to", "eu9")
    with pytest.raises(CommandError, match="No tenant has the id 'nope'"):
        call_command("tenant_move", "nope", "--to", "tenants2")


def test_verify_names_the_tables_that_differ(acme):
    from tenants.services.moves import tenant_move_copy, tenant_move_verify

    tenant_move_request(tenant=acme, to="tenants2")
    tenant_move_copy(tenant_id=acme.pk)
    assert tenant_move_verify(tenant_id=acme.pk)["workspace_task"] == 500
    with connections["tenants2"].cursor() as cursor:
        query = sql.SQL("UPDATE {} SET title = 'changed' WHERE id = (SELECT min(id) FROM {})")
        table = sql.Identifier(acme.schema_name, "workspace_task")
        cursor.execute(query.format(table, table))
    with pytest.raises(MoveMismatch, match="differs in workspace_task"):
        tenant_move_verify(tenant_id=acme.pk)
