"""``DjangoTaskWorkflow`` while its tenant is suspended, with a stand-in activity under the
real name: a held run spends none of the task's retries, and a lost release signal only
delays it until the next recheck."""

import uuid

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.activities import tasks as steps
from orchestration.workflows.django_task import HOLD_RECHECK, DjangoTaskInput, DjangoTaskWorkflow


class SuspendedFor:
    """``django_task_run`` whose tenant is suspended for its first ``held`` calls."""

    def __init__(self, held: int):
        self.held, self.calls = held, 0

    @activity.defn(name=steps.django_task_run.__name__)
    async def run(self, params: dict) -> dict:
        self.calls += 1
        if self.calls <= self.held:
            raise ApplicationError(
                "tenant is suspended", type=steps.TENANT_SUSPENDED, non_retryable=True
            )
        return {"value": params["args"], "attempt": activity.info().attempt}


@pytest.mark.parametrize("local", [False, True], ids=["activity", "local-activity"])
async def test_a_held_run_looks_again_without_a_signal_and_keeps_its_retries(
    time_skipping_env, local
):
    env, stand_in = time_skipping_env, SuspendedFor(held=3)
    queue = f"held-{uuid.uuid4()}"
    params = DjangoTaskInput(
        task_path="tests.tasks.sample_tasks.add",
        args=[1, 2],
        tenant_id=str(uuid.uuid4()),
        schema_name="t_x",
        max_attempts=1,
        local=local,
    )
    async with Worker(
        env.client, task_queue=queue, workflows=[DjangoTaskWorkflow], activities=[stand_in.run]
    ):
        began = await env.get_current_time()
        result = await env.client.execute_workflow(
            DjangoTaskWorkflow.run, params, id=f"task-{uuid.uuid4()}", task_queue=queue
        )
        waited = await env.get_current_time() - began
    # Three holds with max_attempts=1: the holds spent no attempt of the task's own.
    assert result == {"value": [1, 2], "attempt": 1}
    assert stand_in.calls == 4
    assert waited >= 3 * HOLD_RECHECK
