"""A live tenant's deletion with a grace period: the services and their signals, refusals
that change nothing, the purge's compare-and-set, the owner's emails, the commands, the
admin actions, the tenant's host and its API while scheduled. (The grace run itself:
tests/orchestration/test_deletion_grace.py.)"""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from orchestration.models import OutboxEntry, OutboxKind, TaskHold
from orchestration.outbox import workflow_type
from orchestration.task_holds import hold_if_suspended
from orchestration.workflows import TenantDeletionGraceWorkflow, TenantDeletionWorkflow
from tenants import signals
from tenants.models import (
    LIVE,
    Domain,
    InvalidTransition,
    Role,
    SuspensionReason,
    Tenant,
    TenantIsActive,
    TenantStatus,
    deletion_grace_workflow_id,
)
from tenants.selectors import domain_for_host
from tenants.services import (
    tenant_request_deletion,
    tenant_schema_drop,
    tenant_set_status,
    tenant_suspend,
)
from tenants.services.deletion import (
    GracePeriodOver,
    tenant_deletion_email,
    tenant_purge_due,
    tenant_purge_now,
    tenant_restore,
    tenant_schedule_deletion,
)
from tests.factories import MembershipFactory, TenantFactory, TokenFactory, UserFactory
from tests.tenants.admin_kit import CHANGELIST, HOST, run_action, texts

pytestmark = pytest.mark.django_db

DAY = 24 * 3600
GRACE_RUN = workflow_type(TenantDeletionGraceWorkflow)
DELETION_RUN = workflow_type(TenantDeletionWorkflow)


@pytest.fixture(autouse=True)
def grace(settings):
    settings.TENANT_DELETION_GRACE = 30 * DAY
    settings.TENANT_DELETION_REMINDER_BEFORE = 3 * DAY


@pytest.fixture
def sent(signals_sent):
    """Every ``tenant_deletion_scheduled`` / ``tenant_restored`` / ``tenant_deletion_requested``
    sent, as (name, sender, kwargs)."""
    return signals_sent(
        {
            signals.tenant_deletion_scheduled: "scheduled",
            signals.tenant_restored: "restored",
            signals.tenant_deletion_requested: "requested",
        }
    )


def active(owner, subdomain="acme"):
    return TenantFactory(owner=owner, subdomain=subdomain, status=TenantStatus.ACTIVE)


def fresh(tenant) -> Tenant:
    return Tenant.objects.get(pk=tenant.pk)


def past_purge_at(tenant) -> None:
    """Schedule the tenant's deletion, then let its grace period end (with no purge yet)."""
    tenant_schedule_deletion(tenant=tenant)
    Tenant.objects.filter(pk=tenant.pk).update(purge_at=timezone.now() - timedelta(seconds=1))


def snapshot(tenant) -> dict:
    return {f.attname: getattr(fresh(tenant), f.attname) for f in Tenant._meta.concrete_fields}


# --- scheduling -----------------------------------------------------------------------------


def test_scheduling_keeps_everything_and_starts_one_grace_run(owner, sent):
    tenant = active(owner)
    before = timezone.now()
    scheduled = tenant_schedule_deletion(tenant=tenant, actor=owner)
    row = fresh(tenant)
    assert row.status == TenantStatus.DELETION_SCHEDULED
    assert row.status in LIVE  # its schema stays, fleet migrations reach it
    assert before + timedelta(days=30) <= row.purge_at <= timezone.now() + timedelta(days=30)
    assert row.deletion_remind_at == row.purge_at - timedelta(days=3)
    assert (row.deletion_scheduling, row.deletion_scheduled_by) == (1, owner)
    assert scheduled.purge_at == row.purge_at
    ((name, _, kwargs),) = sent
    assert (name, kwargs["notify"], kwargs["actor"]) == ("scheduled", True, owner)

    (start,) = OutboxEntry.objects.all()
    assert (start.workflow_type, start.workflow_id) == (
        GRACE_RUN,
        deletion_grace_workflow_id(tenant.pk, 1),
    )
    assert start.arguments["purge_at"] == row.purge_at.isoformat()
    assert start.arguments["remind_at"] == row.deletion_remind_at.isoformat()
    assert start.arguments["scheduling"] == 1
    # Ids only: no email, name or token goes to Temporal.
    assert owner.email not in str(start.arguments)
    assert tenant.name not in str(start.arguments)

    with pytest.raises(TenantIsActive, match="is deletion_scheduled: its schema is not removed"):
        tenant_schema_drop(tenant_id=tenant.pk)


def test_scheduling_twice_is_one_scheduling(owner, sent):
    tenant = active(owner)
    first = tenant_schedule_deletion(tenant=tenant)
    again = tenant_schedule_deletion(tenant=tenant)
    assert again.purge_at == first.purge_at
    assert fresh(tenant).deletion_scheduling == 1
    assert len(sent) == 1
    assert OutboxEntry.objects.count() == 1


def test_a_grace_shorter_than_the_reminder_lead_plans_no_reminder(owner, settings):
    settings.TENANT_DELETION_GRACE = 3600
    tenant_schedule_deletion(tenant=active(owner))
    (start,) = OutboxEntry.objects.all()
    assert start.arguments["remind_at"] == ""
    assert Tenant.objects.get().deletion_remind_at is None


def test_no_grace_deletes_at_once(owner, settings, sent):
    settings.TENANT_DELETION_GRACE = 0
    tenant = tenant_schedule_deletion(tenant=active(owner))
    assert fresh(tenant).status == TenantStatus.DELETING
    assert [name for name, _, _ in sent] == ["requested"]
    assert list(OutboxEntry.objects.values_list("workflow_type", flat=True)) == [DELETION_RUN]


@pytest.mark.parametrize("status", [TenantStatus.PENDING, TenantStatus.FAILED])
def test_a_tenant_with_no_data_yet_is_deleted_at_once(owner, status):
    tenant = tenant_schedule_deletion(tenant=TenantFactory(owner=owner, status=status))
    assert fresh(tenant).status == TenantStatus.DELETING
    assert fresh(tenant).purge_at is None


def test_a_deleted_tenant_cannot_be_scheduled_and_nothing_changes(owner, sent):
    tenant = TenantFactory(owner=owner, status=TenantStatus.DELETED)
    before = snapshot(tenant)
    with pytest.raises(InvalidTransition, match="from 'deleted' to 'deleting'"):
        tenant_schedule_deletion(tenant=tenant)
    assert snapshot(tenant) == before
    assert sent == []
    assert not OutboxEntry.objects.exists()


def test_the_email_limit_skips_the_email_not_the_scheduling(owner, settings, sent):
    settings.EMAIL_RECIPIENT_DAILY_LIMIT = 1
    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    tenant_restore(tenant=tenant)
    tenant_schedule_deletion(tenant=tenant)
    assert [kwargs["notify"] for name, _, kwargs in sent if name == "scheduled"] == [True, False]
    assert fresh(tenant).status == TenantStatus.DELETION_SCHEDULED
    latest = OutboxEntry.objects.get(workflow_id=deletion_grace_workflow_id(tenant.pk, 2))
    assert latest.arguments["notify"] is False


def test_only_its_own_services_enter_or_leave_a_scheduled_deletion(owner):
    tenant = active(owner)
    with pytest.raises(InvalidTransition):
        tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.DELETION_SCHEDULED)
    tenant_schedule_deletion(tenant=tenant)
    # A late retry of provisioning's last step does not restore it.
    assert tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.ACTIVE).status == (
        TenantStatus.DELETION_SCHEDULED
    )
    with pytest.raises(InvalidTransition):  # nor does suspending it
        tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
    assert fresh(tenant).status == TenantStatus.DELETION_SCHEDULED


# --- restore --------------------------------------------------------------------------------


def test_restore_brings_it_back_as_it_was_and_ends_the_run(owner, sent):
    tenant = active(owner)
    before = snapshot(tenant)
    tenant_schedule_deletion(tenant=tenant, actor=owner)
    restored = tenant_restore(tenant=tenant, actor=owner)
    assert restored.status == TenantStatus.ACTIVE
    after = snapshot(tenant)
    assert after.pop("deletion_scheduling") == 1
    assert after.pop("updated_at") >= before.pop("updated_at")
    before.pop("deletion_scheduling")
    assert after == before  # status, purge_at and the rest: as before the scheduling
    name, _, kwargs = sent[-1]
    assert (name, kwargs["scheduling"], kwargs["actor"]) == ("restored", 1, owner)
    end = OutboxEntry.objects.get(kind=OutboxKind.SIGNAL)
    assert (end.workflow_id, end.workflow_type) == (
        deletion_grace_workflow_id(tenant.pk, 1),
        "end_grace",
    )


def test_a_suspended_tenant_is_restored_suspended_for_the_same_reason(owner):
    tenant = active(owner)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.ABUSE)
    suspended_at = fresh(tenant).suspended_at
    tenant_schedule_deletion(tenant=tenant)
    assert fresh(tenant).suspension_reason == SuspensionReason.ABUSE
    restored = tenant_restore(tenant=tenant)
    assert (restored.status, restored.suspension_reason) == ("suspended", "abuse")
    assert fresh(tenant).suspended_at == suspended_at


def test_scheduling_again_after_a_restore_is_a_new_run(owner):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    tenant_restore(tenant=tenant)
    tenant_schedule_deletion(tenant=tenant)
    starts = OutboxEntry.objects.filter(workflow_type=GRACE_RUN).order_by("pk")
    assert list(starts.values_list("workflow_id", flat=True)) == [
        deletion_grace_workflow_id(tenant.pk, 1),
        deletion_grace_workflow_id(tenant.pk, 2),
    ]


@pytest.mark.parametrize("status", [s for s in TenantStatus.values if s != "deletion_scheduled"])
def test_only_a_scheduled_tenant_can_be_restored(owner, sent, status):
    tenant = TenantFactory(owner=owner, status=status)
    before = snapshot(tenant)
    with pytest.raises(InvalidTransition, match=f"from '{status}' to"):
        tenant_restore(tenant=tenant)
    assert snapshot(tenant) == before
    assert sent == []


def test_a_restore_at_purge_at_is_refused_and_changes_nothing(owner, sent):
    tenant = active(owner)
    past_purge_at(tenant)
    before, outbox = snapshot(tenant), OutboxEntry.objects.count()
    with pytest.raises(GracePeriodOver, match="can no longer be restored: its grace period"):
        tenant_restore(tenant=tenant)
    assert snapshot(tenant) == before
    assert OutboxEntry.objects.count() == outbox
    assert [name for name, _, _ in sent] == ["scheduled"]


# --- the purge ------------------------------------------------------------------------------


def test_the_purge_is_a_compare_and_set_on_the_scheduling(owner):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    assert tenant_purge_due(tenant_id=tenant.pk, scheduling=2) is False  # not this one
    assert fresh(tenant).status == TenantStatus.DELETION_SCHEDULED
    assert tenant_purge_due(tenant_id=tenant.pk, scheduling=1) is True
    assert fresh(tenant).status == TenantStatus.DELETING
    assert tenant_purge_due(tenant_id=tenant.pk, scheduling=1) is True  # asked again
    assert OutboxEntry.objects.filter(workflow_type=DELETION_RUN).count() == 1


def test_a_restore_makes_the_due_purge_a_no_op(owner):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    tenant_restore(tenant=tenant)
    assert tenant_purge_due(tenant_id=tenant.pk, scheduling=1) is False
    tenant_schedule_deletion(tenant=tenant)  # scheduled again: the first run's purge is stale
    assert tenant_purge_due(tenant_id=tenant.pk, scheduling=1) is False
    assert fresh(tenant).status == TenantStatus.DELETION_SCHEDULED
    assert not OutboxEntry.objects.filter(workflow_type=DELETION_RUN).exists()


def test_purge_now_cuts_a_scheduling_short_and_its_due_purge_is_a_no_op(owner, sent):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    purged = tenant_purge_now(tenant=tenant, actor=owner)
    assert (purged.status, purged.purge_at) == (TenantStatus.DELETING, None)
    name, _, kwargs = sent[-1]
    assert (name, kwargs["scheduling"]) == ("requested", 1)
    end = OutboxEntry.objects.get(kind=OutboxKind.SIGNAL)
    assert (end.workflow_id, end.workflow_type) == (
        deletion_grace_workflow_id(tenant.pk, 1),
        "end_grace",
    )
    assert tenant_purge_due(tenant_id=tenant.pk, scheduling=1) is False
    assert OutboxEntry.objects.filter(workflow_type=DELETION_RUN).count() == 1


@pytest.mark.parametrize("status", ["pending", "active", "suspended", "failed", "deleting"])
def test_purge_now_starts_from_any_deletable_state(owner, status):
    tenant = TenantFactory(owner=owner, status=status)
    assert tenant_purge_now(tenant=tenant).status in (TenantStatus.DELETING,)
    assert OutboxEntry.objects.filter(workflow_type=DELETION_RUN).count() == 1


def test_purge_now_refuses_a_deleted_tenant(owner):
    tenant = TenantFactory(owner=owner, status=TenantStatus.DELETED)
    with pytest.raises(InvalidTransition):
        tenant_purge_now(tenant=tenant)
    assert not OutboxEntry.objects.exists()


# --- tasks ----------------------------------------------------------------------------------


def test_tasks_are_held_while_scheduled_and_released_by_the_restore(owner):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    assert hold_if_suspended("task-1", str(tenant.pk)) is True
    assert TaskHold.objects.filter(tenant_id=tenant.pk).count() == 1
    tenant_restore(tenant=tenant)
    assert not TaskHold.objects.exists()
    release = OutboxEntry.objects.get(workflow_id="task-1")
    assert release.workflow_type == "tenant_reactivated"
    assert hold_if_suspended("task-2", str(tenant.pk)) is False


def test_a_restore_to_suspended_keeps_the_tasks_held(owner):
    tenant = active(owner)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
    tenant_schedule_deletion(tenant=tenant)
    hold_if_suspended("task-1", str(tenant.pk))
    tenant_restore(tenant=tenant)
    assert TaskHold.objects.filter(workflow_id="task-1").exists()


# --- emails ---------------------------------------------------------------------------------


def test_the_owner_is_emailed_only_while_the_same_scheduling_lasts(owner):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    assert tenant_deletion_email(tenant_id=tenant.pk, scheduling=1, reminder=False) is True
    assert tenant_deletion_email(tenant_id=tenant.pk, scheduling=1, reminder=True) is True
    assert fresh(tenant).deletion_reminded_at is not None
    first, reminder = mail.outbox
    assert first.to == reminder.to == [owner.email]
    assert first.subject == "Acme is scheduled for deletion"
    assert reminder.subject.startswith("Reminder: Acme will be deleted on ")
    assert f"/api/v1/tenants/{tenant.pk}/restore/" in first.body
    tenant_restore(tenant=tenant)
    assert tenant_deletion_email(tenant_id=tenant.pk, scheduling=1, reminder=True) is False
    assert len(mail.outbox) == 2


# --- commands -------------------------------------------------------------------------------


def test_commands_restore_and_purge(owner, capsys):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    call_command("tenant_restore", str(tenant.pk))
    assert "is active again" in capsys.readouterr().out
    tenant_schedule_deletion(tenant=tenant)
    call_command("tenant_purge", str(tenant.pk))
    assert "is being deleted" in capsys.readouterr().out
    assert fresh(tenant).status == TenantStatus.DELETING


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenant_purge", "not-a-uuid"], "No tenant has the id"),
        (["tenant_restore", "00000000-0000-0000-0000-000000000000"], "No tenant has the id"),
        (["tenant_restore", "{id}"], "cannot go from 'deleted' to 'active'"),
        (["tenant_purge", "{id}"], "cannot go from 'deleted' to 'deleting'"),
    ],
)
def test_commands_refuse_with_a_command_error(owner, args, message):
    tenant = TenantFactory(owner=owner, status=TenantStatus.DELETED)
    with pytest.raises(CommandError, match=message):
        call_command(*[arg.format(id=tenant.pk) for arg in args])
    assert fresh(tenant).status == TenantStatus.DELETED


def test_restore_command_after_purge_at_says_so(owner):
    tenant = active(owner)
    past_purge_at(tenant)
    with pytest.raises(CommandError, match="grace period ended at"):
        call_command("tenant_restore", str(tenant.pk))
    assert fresh(tenant).status == TenantStatus.DELETION_SCHEDULED


# --- admin ----------------------------------------------------------------------------------


def test_admin_schedules_restores_and_reports_refusals(admin_client, owner):
    alpha = active(owner, "alpha")
    bravo = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.PENDING)
    response = run_action(admin_client, "schedule_deletion", [alpha, bravo])
    assert texts(response) == [
        "Skipped Bravo (bravo): it is pending; only active or suspended tenants can have "
        "their deletion scheduled.",
        "1 scheduled for deletion: Alpha (alpha).",
    ]
    assert fresh(alpha).status == TenantStatus.DELETION_SCHEDULED
    assert fresh(bravo).status == TenantStatus.PENDING
    listed = admin_client.get(CHANGELIST, **HOST).content.decode()
    assert "Purge at" in listed

    page = admin_client.get(f"{CHANGELIST}{alpha.pk}/change/", **HOST)
    plan = page.content.decode()
    assert 'id="scheduled-deletion"' in plan
    assert deletion_grace_workflow_id(alpha.pk, 1) in plan
    offered = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert {"restore", "delete_tenants"} <= set(offered)

    response = run_action(admin_client, "restore", [alpha, bravo])
    assert texts(response) == [
        "Skipped Bravo (bravo): it is pending; only tenants scheduled for deletion can be "
        "restored.",
        "1 restored: Alpha (alpha).",
    ]
    assert fresh(alpha).status == TenantStatus.ACTIVE


def test_admin_restore_after_purge_at_names_the_tenant_and_why(admin_client, owner):
    tenant = active(owner)
    past_purge_at(tenant)
    (message,) = texts(run_action(admin_client, "restore", [tenant]))
    assert message.startswith(f"Skipped Acme (acme): Tenant {tenant.pk} can no longer be restored")
    assert fresh(tenant).status == TenantStatus.DELETION_SCHEDULED


def test_admin_purges_now_from_the_tenants_page(admin_client, owner):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    page = f"{CHANGELIST}{tenant.pk}/change/"
    form = "CHANGE_FORM-"
    confirm = run_action(admin_client, "delete_tenants", [tenant], url=page, prefix=form)
    assert b"Yes, delete these tenants" in confirm.content
    assert b'name="CHANGE_FORM-action" value="delete_tenants"' in confirm.content
    done = run_action(
        admin_client, "delete_tenants", [tenant], url=page, prefix=form, confirm="yes"
    )
    assert texts(done) == ["1 queued for deletion: Acme (acme)."]
    assert fresh(tenant).status == TenantStatus.DELETING
    assert OutboxEntry.objects.filter(kind=OutboxKind.SIGNAL, workflow_type="end_grace").exists()


# --- the tenant's host and API while scheduled ----------------------------------------------


def test_the_host_stops_serving_at_once_and_comes_back_on_restore(owner):
    tenant = active(owner)
    Domain.objects.create(domain="acme.localhost", tenant=tenant, is_primary=True)
    assert domain_for_host(host="acme.localhost") is not None
    tenant_schedule_deletion(tenant=tenant)
    assert domain_for_host(host="acme.localhost") is None
    assert Client(HTTP_HOST="acme.localhost").get("/").status_code == 404
    tenant_restore(tenant=tenant)
    assert domain_for_host(host="acme.localhost").tenant.pk == tenant.pk


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {TokenFactory(user=user).raw}"}


@pytest.fixture
def team(owner):
    tenant = active(owner)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    member = UserFactory(email="member@example.com")
    MembershipFactory(user=member, tenant=tenant, role=Role.ADMIN)
    return tenant, member


def test_the_owner_deletes_with_202_and_purge_at_then_restores(team, owner):
    tenant, _ = team
    api = APIClient(**HOST)
    url = f"/api/v1/tenants/{tenant.pk}/"
    answer = api.delete(url, **bearer(owner))
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["status"] == "deletion_scheduled"
    assert body["purge_at"] == fresh(tenant).purge_at.isoformat().replace("+00:00", "Z")
    assert api.delete(url, **bearer(owner)).json()["purge_at"] == body["purge_at"]
    assert api.get(url, **bearer(owner)).json()["purge_at"] == body["purge_at"]

    restored = api.post(f"{url}restore/", **bearer(owner))
    assert restored.status_code == 200, restored.content
    assert (restored.json()["status"], restored.json()["purge_at"]) == ("active", None)
    again = api.post(f"{url}restore/", **bearer(owner))
    assert again.status_code == 409
    assert again.json() == {"detail": "This organisation is active, not scheduled for deletion."}


def test_members_are_refused_with_a_detail_and_change_nothing(team, owner):
    tenant, member = team
    api = APIClient(**HOST)
    url = f"/api/v1/tenants/{tenant.pk}/"
    answer = api.delete(url, **bearer(member))
    assert (answer.status_code, answer.json()) == (
        403,
        {"detail": "Only the owner can delete this organisation."},
    )
    tenant_schedule_deletion(tenant=tenant)
    restore = api.post(f"{url}restore/", **bearer(member))
    assert (restore.status_code, restore.json()) == (
        403,
        {"detail": "Only the owner can restore this organisation."},
    )
    status = api.get(url, **bearer(member))
    assert status.status_code == 403
    assert status.json()["status"] == "deletion_scheduled"
    assert "its owner can restore it" in status.json()["detail"]
    assert fresh(tenant).status == TenantStatus.DELETION_SCHEDULED
    stranger = UserFactory(email="stranger@example.com")
    assert api.post(f"{url}restore/", **bearer(stranger)).status_code == 404


def test_a_restore_after_purge_at_is_409_and_changes_nothing(team, owner):
    tenant, _ = team
    past_purge_at(tenant)
    before = snapshot(tenant)
    answer = APIClient(**HOST).post(f"/api/v1/tenants/{tenant.pk}/restore/", **bearer(owner))
    assert answer.status_code == 409
    assert "can no longer be restored: its grace period ended at" in answer.json()["detail"]
    assert snapshot(tenant) == before


def test_a_deleted_tenant_is_409_on_delete_and_restore(owner):
    tenant = TenantFactory(owner=owner, status=TenantStatus.DELETED)
    api = APIClient(**HOST)
    url = f"/api/v1/tenants/{tenant.pk}/"
    assert api.delete(url, **bearer(owner)).status_code == 409
    assert api.post(f"{url}restore/", **bearer(owner)).status_code == 409


def test_purge_through_request_deletion_still_works_from_scheduled(owner):
    tenant = active(owner)
    tenant_schedule_deletion(tenant=tenant)
    assert tenant_request_deletion(tenant_id=tenant.pk).status == TenantStatus.DELETING


def test_the_owner_can_export_before_the_purge(team, owner, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    tenant, member = team
    tenant_schedule_deletion(tenant=tenant)
    api = APIClient(**HOST)
    answer = api.post(f"/api/v1/tenants/{tenant.pk}/exports/", **bearer(owner))
    assert answer.status_code == 202, answer.content
    assert api.post(f"/api/v1/tenants/{tenant.pk}/exports/", **bearer(member)).status_code == 403
