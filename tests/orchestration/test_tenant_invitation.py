"""The invitation workflow (time-skipping server): email, wait, remind once, expire; ended
by acceptance or revocation; a resend on request; its timers survive a worker restart.
Then its real activities against PostgreSQL."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.activities import people as people_activities
from orchestration.workflows import TenantInvitationInput, TenantInvitationWorkflow
from tenants.models import Invitation, InvitationStatus, Role, Tenant, TenantStatus
from tenants.services.people import invitation_create, invitation_revoke
from tests.factories import MembershipFactory, TenantFactory, UserFactory

DAY = 24 * 3600


class FakeMailer:
    """The invitation's activities under their real names, recording what they were asked."""

    def __init__(self):
        self.sent: list[bool] = []  # reminder or not, in order
        self.expired = 0

        @activity.defn(name="invitation_send")
        async def send(invitation_id: str, reminder: bool) -> bool:
            self.sent.append(reminder)
            return True

        @activity.defn(name="invitation_expire")
        async def expire(invitation_id: str) -> bool:
            self.expired += 1
            return True

        self.activities = [send, expire]


def params() -> TenantInvitationInput:
    return TenantInvitationInput(
        invitation_id=str(uuid.uuid4()), remind_after_seconds=3 * DAY, expire_after_seconds=7 * DAY
    )


def worker(env, queue, mailer, **options):
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[TenantInvitationWorkflow],
        activities=mailer.activities,
        **options,
    )


# A worker that caches no run: each of its tasks replays the history on the run's own queue
# (no sticky queue left behind, pointing at a worker that is gone).
UNCACHED = {"max_cached_workflows": 0}


async def run_invitation(env, signals: list[tuple[float, str]]):
    """Start a run, send each signal ``(after seconds, name)`` in turn, return its result."""
    mailer = FakeMailer()
    queue = f"invitation-{uuid.uuid4()}"
    async with worker(env, queue, mailer):
        handle = await env.client.start_workflow(
            TenantInvitationWorkflow.run, params(), id=f"inv-{uuid.uuid4()}", task_queue=queue
        )
        for after, name in signals:
            await env.sleep(after)
            await handle.signal(name)
        result = await handle.result()
    return result, mailer


async def test_left_alone_it_reminds_once_then_expires(time_skipping_env):
    result, mailer = await run_invitation(time_skipping_env, [])
    assert (result.state, result.emails_sent) == ("expired", 2)
    assert mailer.sent == [False, True]
    assert mailer.expired == 1


async def test_accepted_before_the_reminder_ends_without_reminding(time_skipping_env):
    result, mailer = await run_invitation(time_skipping_env, [(DAY, "accepted")])
    assert result.state == "accepted"
    assert mailer.sent == [False]
    assert mailer.expired == 0


async def test_revoked_after_the_reminder_ends_without_expiring(time_skipping_env):
    result, mailer = await run_invitation(time_skipping_env, [(4 * DAY, "revoked")])
    assert result.state == "revoked"
    assert mailer.sent == [False, True]
    assert mailer.expired == 0


async def test_a_resend_emails_again_and_keeps_the_timers(time_skipping_env):
    result, mailer = await run_invitation(time_skipping_env, [(DAY, "resend"), (DAY, "resend")])
    assert result.state == "expired"
    assert mailer.sent == [False, False, False, True]
    assert mailer.expired == 1


async def test_its_timers_survive_a_worker_restart(time_skipping_env):
    """The worker goes away mid-wait (before the reminder, then before the expiry); a new
    worker picks the run up each time, and the reminder and the expiry still come, once
    each."""
    env = time_skipping_env
    mailer = FakeMailer()
    queue = f"invitation-{uuid.uuid4()}"
    workflow_id = f"inv-{uuid.uuid4()}"
    async with worker(env, queue, mailer, **UNCACHED):
        handle = await env.client.start_workflow(
            TenantInvitationWorkflow.run, params(), id=workflow_id, task_queue=queue
        )
        await env.sleep(DAY)
        assert (await handle.query(TenantInvitationWorkflow.state)).state == "waiting"
    # A new worker, with nothing cached: it replays the history and keeps the timers.
    async with worker(env, queue, mailer, **UNCACHED):
        await env.sleep(3 * DAY)
        assert (await handle.query(TenantInvitationWorkflow.state)).state == "reminded"
    async with worker(env, queue, mailer, **UNCACHED):
        result = await handle.result()
    assert result.state == "expired"
    assert mailer.sent == [False, True]
    assert mailer.expired == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"invitation_id": "nope"}, "invitation_id"),
        ({}, "invitation_id"),
        (
            {
                "invitation_id": str(uuid.uuid4()),
                "remind_after_seconds": 9,
                "expire_after_seconds": 9,
            },
            "remind_after_seconds",
        ),
    ],
)
async def test_invalid_input_fails_the_run_at_once_naming_the_field(
    time_skipping_env, arguments, field
):
    queue = f"invitation-{uuid.uuid4()}"
    async with worker(time_skipping_env, queue, FakeMailer()):
        with pytest.raises(WorkflowFailureError) as failure:
            await time_skipping_env.client.execute_workflow(
                "TenantInvitationWorkflow",
                arguments,
                id=f"inv-{uuid.uuid4()}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable, cause.details) == ("InvalidInput", True, (field,))


# --- real activities against PostgreSQL ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_real_activities_email_the_link_remind_and_expire_only_a_pending_invitation():
    owner = UserFactory()
    tenant = TenantFactory(owner=owner)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    invitation = invitation_create(
        tenant_id=tenant.pk, actor=owner, email="Invitee@Example.com", role="admin"
    )
    send = people_activities.invitation_send.__wrapped__
    assert send(str(invitation.pk), False)
    assert mail.outbox[-1].to == ["invitee@example.com"]
    assert "#token=" in mail.outbox[-1].body
    assert "as admin" in mail.outbox[-1].body
    assert send(str(invitation.pk), True)
    assert mail.outbox[-1].subject.startswith("Reminder")
    assert Invitation.objects.get(pk=invitation.pk).reminded_at is not None
    expire = people_activities.invitation_expire.__wrapped__
    assert expire(str(invitation.pk))
    assert not expire(str(invitation.pk))  # idempotent
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.EXPIRED
    assert not send(str(invitation.pk), True)
    assert len(mail.outbox) == 2

    # A tenant that takes no new members gets no invitation email out.
    other = invitation_create(tenant_id=tenant.pk, actor=owner, email="b@example.com")
    Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.DELETING)
    assert not send(str(other.pk), False)
    assert len(mail.outbox) == 2
    Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.PENDING)
    invitation_revoke(tenant_id=tenant.pk, actor=None, invitation_id=other.pk)
    assert not expire(str(other.pk))  # a revocation that came first stands
    assert Invitation.objects.get(pk=other.pk).status == InvitationStatus.REVOKED


# --- end to end: the relay, a real Temporal server, real activities -----------------------


@pytest.mark.usefixtures("queue_prefix")
@pytest.mark.django_db(transaction=True)
def test_an_invitation_left_alone_expires_on_its_timer_across_a_worker_restart(temporal, settings):
    """Emailed by one worker, which then stops; the reminder's time and the expiry's come
    while a second worker runs (its timers are the server's, not the worker's): the
    reminder goes out once, the invitation expires, and its link no longer works."""
    import time

    from orchestration.receivers import invitation_workflow_id
    from tenants.services.people import InvitationInvalid, invitation_accept
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, workflow_result

    # The expiry leaves room for slow worker starts: a reminder processed after the
    # invitation's own expires_at is, rightly, not sent.
    settings.INVITATION_REMIND_AFTER, settings.INVITATION_TTL = 2, 12
    owner = UserFactory()
    tenant = TenantFactory(owner=owner)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    invitation = invitation_create(tenant_id=tenant.pk, actor=owner, email="idle@example.com")
    with BackgroundWorker(temporal, kinds=("tenant",)):
        wait_until(lambda: len(mail.outbox) == 1, timeout=30, what="the invitation email")
    link = mail.outbox[0].body.split("#token=", 1)[1].split()[0]
    time.sleep(1)  # no worker for a while, mid-timer
    with BackgroundWorker(temporal, kinds=("tenant",)):
        result = run_async(workflow_result(temporal, invitation_workflow_id(invitation.pk)))
    assert result == {"state": "expired", "emails_sent": 2}
    assert [m.subject.startswith("Reminder") for m in mail.outbox] == [False, True]
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.EXPIRED
    with pytest.raises(InvitationInvalid):
        invitation_accept(raw_token=link, password="a fresh passphrase 77")
