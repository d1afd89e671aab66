"""Tenant suspension: the services and their signals, the commands, the admin actions, the
tenant's host and its API while suspended. (Held tasks with a real worker:
tests/tasks/test_suspension.py; fleet migrations: tests/orchestration/test_fleet.py.)"""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from orchestration.models import OutboxEntry, OutboxKind, TaskHold
from tenants import signals
from tenants.models import (
    Domain,
    InvalidTransition,
    Role,
    SuspensionReason,
    Tenant,
    TenantExport,
    TenantIsActive,
    TenantStatus,
)
from tenants.services import (
    tenant_reactivate,
    tenant_request_deletion,
    tenant_schema_drop,
    tenant_set_status,
    tenant_suspend,
)
from tests.factories import MembershipFactory, TenantFactory, TokenFactory, UserFactory
from tests.tenants.admin_kit import CHANGELIST, HOST, run_action, texts

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(signals_sent):
    """Every ``tenant_suspended`` / ``tenant_reactivated`` sent, as (name, sender, kwargs)."""
    return signals_sent(
        {signals.tenant_suspended: "suspended", signals.tenant_reactivated: "reactivated"}
    )


def active(owner, subdomain="acme"):
    return TenantFactory(owner=owner, subdomain=subdomain, status=TenantStatus.ACTIVE)


def fresh(tenant) -> Tenant:
    return Tenant.objects.get(pk=tenant.pk)


# --- services and signals -------------------------------------------------------------------


def test_suspend_then_reactivate_records_the_reason_and_sends_each_signal(owner, sent):
    tenant = active(owner)
    suspended = tenant_suspend(tenant=tenant, reason=SuspensionReason.ABUSE, actor=owner)
    row = fresh(tenant)
    assert (row.status, row.suspension_reason) == (TenantStatus.SUSPENDED, "abuse")
    assert row.suspended_at is not None
    assert suspended.suspended_at == row.suspended_at
    ((name, sender, kwargs),) = sent
    assert (name, sender, kwargs["reason"], kwargs["actor"]) == (
        "suspended",
        Tenant,
        "abuse",
        owner,
    )
    assert kwargs["tenant"].status == TenantStatus.SUSPENDED

    tenant_reactivate(tenant=tenant)
    row = fresh(tenant)
    assert (row.status, row.suspension_reason, row.suspended_at) == (TenantStatus.ACTIVE, "", None)
    name, _, kwargs = sent[1]
    assert (name, kwargs["reason"], kwargs["actor"]) == ("reactivated", "abuse", None)
    assert not OutboxEntry.objects.exists()  # no workflow: nothing was held


@pytest.mark.parametrize("status", [s for s in TenantStatus.values if s != TenantStatus.ACTIVE])
def test_only_an_active_tenant_can_be_suspended(owner, sent, status):
    tenant = TenantFactory(owner=owner, status=status)
    with pytest.raises(InvalidTransition, match=f"from '{status}' to 'suspended'"):
        tenant_suspend(tenant=tenant, reason=SuspensionReason.MOVING)
    row = fresh(tenant)
    assert row.status == status
    assert row.suspension_reason == ("billing" if status == TenantStatus.SUSPENDED else "")
    assert sent == []


@pytest.mark.parametrize("status", [s for s in TenantStatus.values if s != TenantStatus.SUSPENDED])
def test_only_a_suspended_tenant_can_be_reactivated(owner, sent, status):
    tenant = TenantFactory(owner=owner, status=status)
    with pytest.raises(InvalidTransition, match=f"from '{status}' to 'active'"):
        tenant_reactivate(tenant=tenant)
    assert fresh(tenant).status == status
    assert sent == []


def test_an_unknown_reason_is_refused_and_nothing_changes(owner, sent):
    tenant = active(owner)
    with pytest.raises(ValidationError, match="'late' is not one of billing, abuse"):
        tenant_suspend(tenant=tenant, reason="late")
    assert fresh(tenant).status == TenantStatus.ACTIVE
    assert sent == []


def test_a_suspended_tenant_is_suspended_only_by_the_service(owner):
    tenant = active(owner)
    with pytest.raises(InvalidTransition):
        tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.SUSPENDED)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
    # A late retry of provisioning's last step does not end the suspension.
    assert tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.ACTIVE).status == "suspended"
    assert fresh(tenant).status == TenantStatus.SUSPENDED


def test_a_suspended_tenant_keeps_its_schema_and_can_be_deleted(owner):
    tenant = active(owner)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.OWNER)
    with pytest.raises(TenantIsActive, match="is suspended: its schema is not removed"):
        tenant_schema_drop(tenant_id=tenant.pk)
    tenant_request_deletion(tenant_id=tenant.pk)
    assert fresh(tenant).status == TenantStatus.DELETING


def test_reactivation_and_deletion_release_the_held_tasks_through_the_outbox(owner):
    kept, deleted = active(owner, "kept"), active(owner, "gone")
    for tenant in (kept, deleted):
        tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
        for n in (1, 2):
            TaskHold.objects.create(workflow_id=f"task-{tenant.subdomain}-{n}", tenant_id=tenant.pk)
    tenant_reactivate(tenant=kept)
    signals_sent = OutboxEntry.objects.filter(kind=OutboxKind.SIGNAL)
    assert sorted(signals_sent.values_list("workflow_id", "workflow_type")) == [
        ("task-kept-1", "tenant_reactivated"),
        ("task-kept-2", "tenant_reactivated"),
    ]
    assert sorted(TaskHold.objects.values_list("workflow_id", flat=True)) == [
        "task-gone-1",
        "task-gone-2",
    ]
    tenant_request_deletion(tenant_id=deleted.pk)
    assert not TaskHold.objects.exists()
    assert signals_sent.filter(workflow_id__startswith="task-gone-").count() == 2


# --- commands -------------------------------------------------------------------------------


def test_commands_suspend_and_reactivate(owner, capsys):
    tenant = active(owner)
    call_command("tenant_suspend", str(tenant.pk), "--reason", "unverified")
    assert "is suspended (unverified)" in capsys.readouterr().out
    assert fresh(tenant).suspension_reason == SuspensionReason.UNVERIFIED
    call_command("tenant_reactivate", str(tenant.pk))
    assert "is active again" in capsys.readouterr().out
    assert fresh(tenant).status == TenantStatus.ACTIVE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenant_suspend", "not-a-uuid", "--reason", "billing"], "No tenant has the id"),
        (
            ["tenant_suspend", "00000000-0000-0000-0000-000000000000", "--reason", "billing"],
            "No tenant has the id",
        ),
        (["tenant_reactivate", "00000000-0000-0000-0000-000000000000"], "No tenant has the id"),
        (["tenant_suspend", "{id}", "--reason", "late"], "Unknown reason 'late'"),
        (["tenant_reactivate", "{id}"], "cannot go from 'active' to 'active'"),
    ],
)
def test_commands_refuse_with_a_command_error(owner, args, message):
    tenant = active(owner)
    with pytest.raises(CommandError, match=message):
        call_command(*[arg.format(id=tenant.pk) for arg in args])
    assert fresh(tenant).status == TenantStatus.ACTIVE


def test_suspending_a_suspended_tenant_by_command_is_refused(owner):
    tenant = active(owner)
    call_command("tenant_suspend", str(tenant.pk), "--reason", "billing")
    with pytest.raises(CommandError, match="cannot go from 'suspended' to 'suspended'"):
        call_command("tenant_suspend", str(tenant.pk), "--reason", "abuse")
    assert fresh(tenant).suspension_reason == SuspensionReason.BILLING


# --- admin actions --------------------------------------------------------------------------


def test_admin_suspends_for_the_reason_of_the_action_and_reports_refusals(admin_client, owner):
    alpha = active(owner, "alpha")
    bravo = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.PENDING)
    page = admin_client.get(CHANGELIST, **HOST)
    offered = [value for value, _ in page.context["action_form"].fields["action"].choices]
    by_hand = {reason for reason in SuspensionReason.values if reason != SuspensionReason.MOVING}
    assert {f"suspend_{reason}" for reason in by_hand} <= set(offered)
    assert "suspend_moving" not in offered  # a move's own
    assert {"move_to_default", "move_to_tenants2"} <= set(offered)
    assert "reactivate" in offered

    response = run_action(admin_client, "suspend_abuse", [alpha, bravo])
    assert response.status_code == 200
    assert texts(response) == [
        "Skipped Bravo (bravo): it is pending; only active tenants can be suspended.",
        "1 suspended (Abuse): Alpha (alpha).",
    ]
    assert (fresh(alpha).status, fresh(alpha).suspension_reason) == ("suspended", "abuse")
    assert fresh(bravo).status == TenantStatus.PENDING

    response = run_action(admin_client, "reactivate", [alpha, bravo])
    assert texts(response) == [
        "Skipped Bravo (bravo): it is pending; only suspended tenants can be reactivated.",
        "1 reactivated: Alpha (alpha).",
    ]
    assert fresh(alpha).status == TenantStatus.ACTIVE


def test_admin_moves_to_the_database_of_the_action_and_reports_refusals(admin_client, owner):
    alpha = active(owner, "alpha")
    bravo = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.PENDING)
    response = run_action(admin_client, "move_to_tenants2", [alpha, bravo])
    assert texts(response) == [
        f"Skipped Bravo (bravo): Tenant {bravo.pk} is pending: only an active or suspended "
        "tenant is moved.",
        "1 being moved to tenants2: Alpha (alpha).",
    ]
    assert fresh(alpha).move_to == "tenants2"
    response = run_action(admin_client, "move_to_default", [alpha])
    assert texts(response) == [f"Skipped Alpha (alpha): Tenant {alpha.pk} is already in 'default'."]
    from tenants.services.moves import tenant_move_hold

    tenant_move_hold(tenant_id=alpha.pk)  # the move's first step: suspended, "moving"
    response = run_action(admin_client, "reactivate", [alpha])
    assert texts(response) == [
        f"Skipped Alpha (alpha): Tenant {alpha.pk} is being moved to 'tenants2': the move "
        "suspends it with reason 'moving' and ends that suspension itself."
    ]
    assert fresh(alpha).suspension_reason == SuspensionReason.MOVING


def test_admin_suspension_needs_the_change_permission(client, owner):
    from django.contrib.auth.models import Permission

    staff = UserFactory(email="viewer@example.com", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client.force_login(staff)
    tenant = active(owner)
    run_action(client, "suspend_billing", [tenant])
    assert fresh(tenant).status == TenantStatus.ACTIVE


# --- the tenant's host and API while suspended ----------------------------------------------


def test_the_host_of_a_suspended_tenant_answers_403_naming_the_state(owner):
    tenant = active(owner)
    Domain.objects.create(domain="acme.localhost", tenant=tenant, is_primary=True)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
    client = Client(HTTP_HOST="acme.localhost")
    for path in ("/", "/anything/"):
        answer = client.get(path)
        assert answer.status_code == 403
        assert answer["Content-Type"] == "application/json"
        assert answer.json() == {
            "detail": "This organisation is suspended (Billing lapsed).",
            "status": "suspended",
            "reason": "billing",
        }
    Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.DELETING)
    assert client.get("/").status_code == 404  # neither active nor suspended: as before


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {TokenFactory(user=user).raw}"}


@pytest.fixture
def suspended(owner):
    tenant = active(owner)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.ABUSE)
    return fresh(tenant)


REFUSED = {
    "detail": "This organisation is suspended (Abuse).",
    "status": "suspended",
    "reason": "abuse",
}


def test_the_owner_reads_the_status_and_reason(suspended, owner):
    api = APIClient(**HOST)
    answer = api.get(f"/api/v1/tenants/{suspended.pk}/", **bearer(owner))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["suspension_reason"]) == ("suspended", "abuse")
    assert body["suspended_at"] is not None
    assert body["progress"] is None


def test_a_member_is_refused_with_the_state(suspended):
    member = UserFactory(email="member@example.com")
    MembershipFactory(user=member, tenant=suspended, role=Role.ADMIN)
    api = APIClient(**HOST)
    answer = api.get(f"/api/v1/tenants/{suspended.pk}/", **bearer(member))
    assert (answer.status_code, answer.json()) == (403, REFUSED)
    stranger = UserFactory(email="stranger@example.com")
    assert api.get(f"/api/v1/tenants/{suspended.pk}/", **bearer(stranger)).status_code == 404


def test_other_actions_of_the_owner_are_refused_with_the_state(suspended, owner):
    api = APIClient(**HOST)
    answer = api.delete(f"/api/v1/tenants/{suspended.pk}/", **bearer(owner))
    assert (answer.status_code, answer.json()) == (403, REFUSED)
    assert fresh(suspended).status == TenantStatus.SUSPENDED
    assert not OutboxEntry.objects.exists()


def test_the_owner_can_still_export(suspended, owner, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    api = APIClient(**HOST)
    answer = api.post(f"/api/v1/tenants/{suspended.pk}/exports/", **bearer(owner))
    assert answer.status_code == 202, answer.content
    export = TenantExport.objects.get(tenant=suspended)
    # Its task runs while the tenant is suspended (the backend's while_suspended option).
    row = OutboxEntry.objects.get(workflow_id=export.task_result_id)
    assert row.arguments["while_suspended"] is True
    status = api.get(answer.json()["status_url"], **bearer(owner))
    assert status.status_code == 200
