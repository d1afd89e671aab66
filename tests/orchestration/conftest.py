import asyncio
import time

import pytest
from temporalio.client import Client

from accounts.models import User
from orchestration.relay import OutboxRelay


@pytest.fixture
def owner(transactional_db):
    return User.objects.create_user("owner@example.com", "a long passphrase 123")


def relay_for(address: str, **kwargs) -> OutboxRelay:
    return OutboxRelay(connect=lambda: Client.connect(address), **kwargs)


def run_async(coro):
    return asyncio.run(coro)


async def _runs(address: str, workflow_id: str) -> list:
    client = await Client.connect(address)
    return [wf async for wf in client.list_workflows(f'WorkflowId = "{workflow_id}"')]


def runs_of(address: str, workflow_id: str, *, at_least: int = 1, wait: float = 5.0) -> list:
    """Every run of ``workflow_id`` (visibility lags a little: wait for ``at_least``)."""
    deadline = time.monotonic() + wait
    while True:
        runs = run_async(_runs(address, workflow_id))
        if len(runs) >= at_least or time.monotonic() > deadline:
            return runs
        time.sleep(0.1)


async def _describe(address: str, workflow_id: str):
    client = await Client.connect(address)
    return await client.get_workflow_handle(workflow_id).describe()


def describe(address: str, workflow_id: str):
    return run_async(_describe(address, workflow_id))
