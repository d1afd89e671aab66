"""Steps and emails retry for as long as an outage can last (the retry window), and no longer.
On the time-skipping test server: hours of back-off pass in a moment."""

import uuid
from collections import Counter

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.workflows import (
    TenantProvisioningInput,
    TenantProvisioningWorkflow,
    UserOnboardingInput,
    UserOnboardingWorkflow,
)
from orchestration.workflows.tenant_provisioning import PROVISIONING

pytestmark = pytest.mark.temporal

# An outage of three hours: far past the ten attempts (~150 s) steps used to give up after.
OUTAGE_ATTEMPTS = 200  # at one attempt a minute once backed off: a little over three hours


def fakes(flaky: str, *, fail_for: int, calls: Counter, names=None):
    """Stand-ins for the saga's activities; ``flaky`` fails (retryably) ``fail_for`` times."""

    def answer(name: str):
        calls[name] += 1
        if name == flaky and calls[name] <= fail_for:
            raise ApplicationError("connection refused")  # retryable: an outage
        return "acme.localhost" if name == "tenant_create_domain" else None

    def fake(name: str):
        @activity.defn(name=name)
        async def run(*args):
            if name == "tenant_run_steps":  # several steps as one: each answers in turn
                return [answer(step) for step in args[1]]
            return answer(name)

        return run

    return [fake(n) for n in names or [a.__name__ for a in PROVISIONING.activities]]


async def provision(env, activities, **inputs):
    queue = f"durable-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[TenantProvisioningWorkflow],
        activities=activities,
    ):
        return await env.client.execute_workflow(
            TenantProvisioningWorkflow.run,
            TenantProvisioningInput(tenant_id=str(uuid.uuid4()), **inputs),
            id=f"durable-{uuid.uuid4()}",
            task_queue=queue,
        )


async def test_a_step_outlasts_an_outage_of_hours(time_skipping_env):
    calls = Counter()
    activities = fakes("tenant_create_schema", fail_for=OUTAGE_ATTEMPTS, calls=calls)
    progress = await provision(time_skipping_env, activities)
    assert progress.state == "completed"
    assert calls["tenant_create_schema"] == OUTAGE_ATTEMPTS + 1
    assert calls["tenant_mark_failed"] == 0


async def test_past_its_retry_window_a_step_fails_the_run_and_says_why(time_skipping_env):
    calls = Counter()
    activities = fakes("tenant_create_schema", fail_for=10**6, calls=calls)
    with pytest.raises(WorkflowFailureError) as failure:
        await provision(time_skipping_env, activities, retry_window_seconds=600)
    assert "create_schema" in str(failure.value.cause)
    assert calls["tenant_mark_failed"] == 1  # the final act recorded the reason
    assert calls["tenant_drop_schema"] == 1  # and the undo ran


async def test_the_verification_email_outlasts_an_smtp_outage(time_skipping_env):
    calls = Counter()
    names = ["onboarding_send_verification", "onboarding_expire_verification"]
    activities = fakes(
        "onboarding_send_verification", fail_for=OUTAGE_ATTEMPTS, calls=calls, names=names
    )
    queue = f"durable-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=[UserOnboardingWorkflow],
        activities=activities,
    ):
        handle = await time_skipping_env.client.start_workflow(
            UserOnboardingWorkflow.run,
            UserOnboardingInput(user_id=str(uuid.uuid4()), verification_token_id=1),
            id=f"durable-{uuid.uuid4()}",
            task_queue=queue,
        )
        result = await handle.result()
    # Sent once the outage was over (after 200 failed attempts), then the reminder, then
    # the expiry: the run never failed.
    assert calls["onboarding_send_verification"] == OUTAGE_ATTEMPTS + 2
    assert result.state == "expired"
