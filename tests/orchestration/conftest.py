import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from temporalio.client import Client

from accounts.models import User
from config.localservices import PROJECT_DIR
from orchestration import client as temporal_client
from orchestration.relay import OutboxRelay


@pytest.fixture
def owner(transactional_db):
    return User.objects.create_user("owner@example.com", "a long passphrase 123")


def relay_for(address: str, **kwargs) -> OutboxRelay:
    """A relay that connects through the project's client (settings: namespace, TLS, API key,
    data converter), to the test server at ``address``."""
    return OutboxRelay(connect=lambda: temporal_client.connect(address=address), **kwargs)


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


class BackgroundWorker:
    """The project's workers for ``kinds`` plus the outbox relay, in threads of this process
    (one event loop, as in ``run_temporal_worker``).

    ``replace`` swaps activities by name (mocks registered under the real names), for
    injecting failures without any hook in production code.
    """

    def __init__(self, address: str, *, replace: dict | None = None, kinds=("tenant",)):
        self.address = address
        self.kinds = kinds
        self.swaps = replace or {}
        self.relay = relay_for(address, poll_interval=0.2)
        self._threads: list[threading.Thread] = []
        self._loop = None
        self._stop = None

    def _plan(self) -> list[tuple[str, list, list]]:
        from orchestration.registry import hosted
        from orchestration.routing import QueueKind, queue_name, tenant_queues

        prefix, plan = settings.TEMPORAL_QUEUE_PREFIX, []
        for kind in map(QueueKind, self.kinds):
            registered = hosted(kind)
            activities = [self.swaps.get(_activity_name(a), a) for a in registered.activities]
            if kind == QueueKind.TENANT:
                queues = tenant_queues(prefix=prefix, shards=settings.TEMPORAL_QUEUE_SHARDS)
            else:
                queues = [queue_name(prefix=prefix, kind=kind)]
            plan += [(q, list(registered.workflows), activities) for q in queues]
        return plan

    def __enter__(self):
        started = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve, args=(self._plan(), started), daemon=True),
            threading.Thread(target=self.relay.run, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        assert started.wait(30), "worker did not start"
        return self

    def _serve(self, plan, started):
        from concurrent.futures import ThreadPoolExecutor

        from temporalio.worker import Worker

        async def main():
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            client = await Client.connect(self.address)
            with ThreadPoolExecutor(8) as pool:
                workers = [
                    Worker(
                        client,
                        task_queue=queue,
                        workflows=workflows,
                        activities=activities,
                        activity_executor=pool,
                    )
                    for queue, workflows, activities in plan
                ]
                runs = [asyncio.create_task(w.run()) for w in workers]
                started.set()
                await self._stop.wait()
                await asyncio.gather(*(w.shutdown() for w in workers))
                await asyncio.gather(*runs, return_exceptions=True)

        asyncio.run(main())

    def __exit__(self, *exc):
        self.relay.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        for thread in self._threads:
            thread.join(30)


def _activity_name(fn) -> str:
    from temporalio.activity import _Definition

    return _Definition.must_from_callable(fn).name


def wait_until(predicate, *, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def queue_prefix(settings) -> str:
    """Queues of this test's own, one shard: the server keeps tasks of earlier tests."""
    settings.TEMPORAL_QUEUE_PREFIX = f"q{uuid.uuid4().hex[:10]}"
    settings.TEMPORAL_QUEUE_SHARDS = 1
    return settings.TEMPORAL_QUEUE_PREFIX


@pytest.fixture
def drop_tenant_schemas(transactional_db):
    """Drop the tenant schemas a test made (the database flush does not drop schemas)."""
    yield
    from django.db import connection

    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\_%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP SCHEMA "{name}" CASCADE')


SHARDS = 4


def database_url() -> str:
    db = settings.DATABASES["default"]
    host = db["HOST"]
    if host.startswith("/"):
        return f"postgresql://{quote(db['USER'])}@/{db['NAME']}?host={quote(host)}"
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def prefix() -> str:
    """A queue prefix of this test's own: the server remembers recent pollers of a queue."""
    return f"w{uuid.uuid4().hex[:10]}"


@pytest.fixture
def start_worker(transactional_db, temporal, tmp_path, prefix):
    procs = []

    def start(*args: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"worker-{len(procs)}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "TEMPORAL_ADDRESS": temporal,
            "TEMPORAL_QUEUE_SHARDS": str(SHARDS),
            "TEMPORAL_QUEUE_PREFIX": prefix,
        }
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(PROJECT_DIR / "manage.py"), "run_temporal_worker", *args],
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_DIR,
            )  # fmt: skip
        procs.append(proc)
        return proc, log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
