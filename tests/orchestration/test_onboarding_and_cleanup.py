"""User onboarding (time-skipping server) and the token-cleanup schedule."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from temporalio.worker import Worker

from accounts.models import Token, TokenPurpose
from accounts.services import token_raw_value, user_register, user_verify_email
from orchestration.activities import accounts as account_activities
from orchestration.schedules import (
    project_schedules,
    sync_schedules,
    token_cleanup_schedule_id,
)
from orchestration.workflows import (
    TokenCleanupInput,
    UserOnboardingInput,
    UserOnboardingWorkflow,
)
from tests.factories import TokenFactory, UserFactory
from tests.kit import run_async
from tests.workers import BackgroundWorker, triggered_run_result

DAY = 24 * 3600


class FakeMailer:
    """Onboarding's activities under their real names, recording what they were asked."""

    def __init__(self):
        self.sent: list[tuple[int, bool]] = []
        self.expired: list[int] = []
        self.abandoned: list[str] = []  # the stages' activities, in order

        @activity.defn(name="onboarding_send_verification")
        async def send(token_id: int, reminder: bool) -> bool:
            self.sent.append((token_id, reminder))
            return True

        @activity.defn(name="onboarding_expire_verification")
        async def expire(token_id: int) -> bool:
            self.expired.append(token_id)
            return True

        def stage(name):
            @activity.defn(name=name)
            async def run(user_id: str) -> int:
                self.abandoned.append(name)
                return 1

            return run

        self.activities = [send, expire] + [
            stage(name)
            for name in (
                "onboarding_suspend_unverified",
                "onboarding_reactivate_verified",
                "onboarding_schedule_deletion",
            )
        ]


async def run_onboarding(env, *, verify_after: float | None, suspend=0, delete=0):
    mailer = FakeMailer()
    queue = f"onboarding-{uuid.uuid4()}"
    params = UserOnboardingInput(
        user_id=str(uuid.uuid4()),
        verification_token_id=7,
        remind_after_seconds=DAY,
        expire_after_seconds=7 * DAY,
        suspend_after_seconds=suspend,
        delete_after_seconds=delete,
    )
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[UserOnboardingWorkflow],
        activities=mailer.activities,
    ):
        handle = await env.client.start_workflow(
            UserOnboardingWorkflow.run, params, id=f"onb-{uuid.uuid4()}", task_queue=queue
        )
        if verify_after is not None:
            await env.sleep(verify_after)
            await handle.signal(UserOnboardingWorkflow.email_verified, {})
        result = await handle.result()
    return result, mailer


async def test_verified_before_the_reminder_completes_without_reminding(time_skipping_env):
    result, mailer = await run_onboarding(time_skipping_env, verify_after=3600)
    assert result.state == "verified"
    assert mailer.sent == [(7, False)]
    assert mailer.expired == []


async def test_no_verification_reminds_once_then_expires(time_skipping_env):
    result, mailer = await run_onboarding(time_skipping_env, verify_after=None)
    assert result.state == "expired"
    assert result.reminders_sent == 1
    assert mailer.sent == [(7, False), (7, True)]
    assert mailer.expired == [7]


async def test_verified_after_the_reminder(time_skipping_env):
    result, mailer = await run_onboarding(time_skipping_env, verify_after=2 * DAY)
    assert result.state == "verified"
    assert mailer.sent == [(7, False), (7, True)]


async def test_an_owner_who_never_verifies_is_suspended_then_deleted(time_skipping_env):
    result, mailer = await run_onboarding(
        time_skipping_env, verify_after=None, suspend=30 * DAY, delete=60 * DAY
    )
    assert result.state == "deletion_scheduled"
    assert mailer.expired == [7]
    assert mailer.abandoned == ["onboarding_suspend_unverified", "onboarding_schedule_deletion"]


async def test_verifying_while_suspended_reactivates_and_deletes_nothing(time_skipping_env):
    result, mailer = await run_onboarding(
        time_skipping_env, verify_after=40 * DAY, suspend=30 * DAY, delete=60 * DAY
    )
    assert result.state == "verified"
    assert mailer.abandoned == ["onboarding_suspend_unverified", "onboarding_reactivate_verified"]


async def test_without_a_deletion_stage_the_suspension_waits_for_the_verification(
    time_skipping_env,
):
    result, mailer = await run_onboarding(
        time_skipping_env, verify_after=400 * DAY, suspend=30 * DAY
    )
    assert result.state == "verified"
    assert mailer.abandoned == ["onboarding_suspend_unverified", "onboarding_reactivate_verified"]


async def test_deletion_without_suspension(time_skipping_env):
    result, mailer = await run_onboarding(time_skipping_env, verify_after=None, delete=9 * DAY)
    assert result.state == "deletion_scheduled"
    assert mailer.abandoned == ["onboarding_schedule_deletion"]


async def test_verified_between_expiry_and_suspension_touches_nothing(time_skipping_env):
    result, mailer = await run_onboarding(
        time_skipping_env, verify_after=10 * DAY, suspend=30 * DAY, delete=60 * DAY
    )
    assert result.state == "verified"
    assert mailer.expired == [7]
    assert mailer.abandoned == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"user_id": "nope", "verification_token_id": 1}, "user_id"),
        (
            {"user_id": str(uuid.uuid4()), "verification_token_id": 1, "suspend_after_seconds": 5},
            "suspend_after_seconds",
        ),
        (
            {
                "user_id": str(uuid.uuid4()),
                "verification_token_id": 1,
                "suspend_after_seconds": 9 * DAY,
                "delete_after_seconds": 8 * DAY,
            },
            "delete_after_seconds",
        ),
        ({"verification_token_id": 1}, "user_id"),  # written by older code, say
        ({"user_id": str(uuid.uuid4())}, "verification_token_id"),
    ],
)
async def test_invalid_input_fails_the_run_at_once_naming_the_field(
    time_skipping_env, arguments, field
):
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import ApplicationError

    queue = f"onboarding-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=[UserOnboardingWorkflow],
        activities=FakeMailer().activities,
    ):
        with pytest.raises(WorkflowFailureError) as failure:
            # By name, as the outbox relay starts it: the worker decodes and validates.
            await time_skipping_env.client.execute_workflow(
                "UserOnboardingWorkflow",
                arguments,
                id=f"onb-{uuid.uuid4()}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("InvalidInput", True)
    assert cause.details == (field,)


# --- real activities against PostgreSQL ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_real_activities_email_the_token_and_revoke_it():
    _, token = user_register(email="ada@example.com", password="a long passphrase 123")
    assert token.purpose == TokenPurpose.EMAIL_VERIFICATION
    assert account_activities.onboarding_send_verification.__wrapped__(token.pk, False)
    assert len(mail.outbox) == 1
    assert token_raw_value(token) in mail.outbox[0].body
    assert mail.outbox[0].to == ["ada@example.com"]
    assert account_activities.onboarding_expire_verification.__wrapped__(token.pk)
    assert user_verify_email(raw_token=token_raw_value(token)) is None  # revoked
    assert not account_activities.onboarding_send_verification.__wrapped__(token.pk, True)
    assert len(mail.outbox) == 1


# --- the cleanup schedule -----------------------------------------------------------------


async def _list_schedule_ids(client: Client) -> set[str]:
    return {s.id async for s in await client.list_schedules()}


@pytest.mark.django_db(transaction=True)
def test_sync_schedules_twice_leaves_unrelated_schedules_alone(temporal, settings):
    settings.TEMPORAL_QUEUE_PREFIX = f"s{uuid.uuid4().hex[:8]}"
    unrelated = f"someone-elses-{uuid.uuid4().hex[:8]}"

    async def scenario():
        client = await Client.connect(temporal)
        await client.create_schedule(
            unrelated,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    "SomebodyElsesWorkflow", id=unrelated, task_queue="elsewhere"
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1))]),
            ),
        )
        before = await client.get_schedule_handle(unrelated).describe()
        first = await sync_schedules(client)
        # An operator pauses ours; the next deployment changes its interval.
        await client.get_schedule_handle(token_cleanup_schedule_id()).pause(note="maintenance")
        settings.TOKEN_CLEANUP_INTERVAL = 7200
        second = await sync_schedules(client)
        after = await client.get_schedule_handle(unrelated).describe()
        ours = await client.get_schedule_handle(token_cleanup_schedule_id()).describe()
        for schedule_id in (unrelated, *first):
            await client.get_schedule_handle(schedule_id).delete()
        return first, second, before, after, ours

    first, second, before, after, ours = run_async(scenario())
    ours_ids = list(project_schedules())
    assert token_cleanup_schedule_id() in ours_ids
    assert first == dict.fromkeys(ours_ids, "created")
    assert second == dict.fromkeys(ours_ids, "updated")
    assert after.schedule.action.workflow == before.schedule.action.workflow
    assert after.schedule.spec.intervals == before.schedule.spec.intervals
    assert ours.schedule.action.workflow == "TokenCleanupWorkflow"
    assert ours.schedule.action.task_queue == f"{settings.TEMPORAL_QUEUE_PREFIX}.jobs"
    assert ours.schedule.spec.intervals[0].every == timedelta(hours=2)  # the update applied
    assert (ours.schedule.state.paused, ours.schedule.state.note) == (True, "maintenance")


@pytest.mark.django_db(transaction=True)
def test_a_triggered_cleanup_run_deletes_exactly_the_stale_tokens(temporal, settings):
    settings.TEMPORAL_QUEUE_PREFIX = f"c{uuid.uuid4().hex[:8]}"
    settings.TOKEN_RETENTION_DAYS = 1
    user = UserFactory(email="ada@example.com")
    long_ago = timezone.now() - timedelta(days=3)
    keep = [
        TokenFactory(user=user, ttl=timedelta(days=5)),
        # Expired, but only just: inside the retention.
        TokenFactory(user=user, ttl=timedelta(hours=-1)),
    ]
    stale = TokenFactory.create_batch(5, user=user, ttl=timedelta(days=5))
    Token.objects.filter(pk__in=[t.pk for t in stale[:2]]).update(expires_at=long_ago)
    Token.objects.filter(pk__in=[t.pk for t in stale[2:4]]).update(used_at=long_ago)
    Token.objects.filter(pk=stale[4].pk).update(revoked_at=long_ago)

    async def trigger_and_wait() -> int:
        client = await Client.connect(temporal)
        await sync_schedules(client)
        result = await triggered_run_result(client, token_cleanup_schedule_id())
        await client.get_schedule_handle(token_cleanup_schedule_id()).delete()
        return result

    with BackgroundWorker(temporal, kinds=("jobs",)):
        deleted = run_async(trigger_and_wait())
    assert deleted == 5
    assert set(Token.objects.values_list("pk", flat=True)) == {t.pk for t in keep}


def test_cleanup_input_validation():
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="batch_size"):
        TokenCleanupInput(batch_size=0)
    with pytest.raises(ApplicationError, match="retention_seconds"):
        TokenCleanupInput(retention_seconds=-1)
