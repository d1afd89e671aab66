"""The test harness itself: real Temporal servers are up and usable."""

import time
import uuid

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.worker import Worker

from tests.harness_workflows import SleepForADayWorkflow


async def test_time_skipping_server_skips_a_day(time_skipping_env):
    client = time_skipping_env.client
    queue = f"harness-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[SleepForADayWorkflow]):
        started = time.monotonic()
        result = await client.execute_workflow(
            SleepForADayWorkflow.run, id=f"sleep-{uuid.uuid4()}", task_queue=queue
        )
    assert result == "woke"
    assert time.monotonic() - started < 30


async def test_dev_server_answers(temporal_address):
    client = await Client.connect(temporal_address)
    info = await client.service_client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.server_version
