"""manage.py run_temporal_worker as a real process."""

import signal
import uuid

import pytest
from django.core.management import CommandError, call_command
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from orchestration.routing import tenant_queues
from tests.kit import run_async, wait_until
from tests.orchestration.worker_extension import SlowStepInput, SlowStepWorkflow
from tests.workers import SHARDS


async def _pollers(address: str, queue: str) -> int:
    client = await Client.connect(address)
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(response.pollers)


def test_worker_with_a_subset_of_shards_polls_exactly_those_queues(start_worker, temporal, prefix):
    proc, log = start_worker("--kind", "tenant", "--shards", "1,3", "--no-relay")
    queues = tenant_queues(prefix=prefix, shards=SHARDS)
    line = wait_until(
        lambda: next((x for x in log.read_text().splitlines() if "polling task queues" in x), None),
        timeout=30,
        what="the worker's start-up log line",
    )
    assert line.split("polling task queues: ")[1].split(" (")[0] == f"{queues[1]}, {queues[3]}"
    for polled in (queues[1], queues[3]):
        wait_until(lambda q=polled: run_async(_pollers(temporal, q)), timeout=15, what=polled)
    assert run_async(_pollers(temporal, queues[0])) == 0
    assert run_async(_pollers(temporal, queues[2])) == 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()


def test_sigterm_during_an_activity_lets_it_finish_and_exits_0(
    start_worker, temporal, tmp_path, prefix
):
    queue = tenant_queues(prefix=prefix, shards=SHARDS)[2]
    proc, log = start_worker("--kind", "tenant", "--shards", "2")
    marker = tmp_path / "markers"
    marker.mkdir()

    async def start():
        client = await Client.connect(temporal)
        await client.start_workflow(
            SlowStepWorkflow.run,
            SlowStepInput(marker_dir=str(marker), seconds=2.0),
            id=f"slow-{uuid.uuid4()}",
            task_queue=queue,
        )

    run_async(start())
    wait_until(lambda: (marker / "started").exists(), timeout=30, what="the activity to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    assert (marker / "finished").read_text() == "ok"
    assert (marker / "started").read_text() == queue


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shards", "9"], "shards run from 0 to"),
        (["--shards", "a,b"], "--shards takes shard numbers"),
        (["--kind", "jobs", "--shards", "1"], "--shards applies to --kind tenant only"),
        (["--queue-shards", "0"], "--queue-shards must be at least 1"),
        (["--shards", "-1"], "shard numbers are 0 or more"),  # polled shard 3 before
        (["--shards=-4,0"], "shard numbers are 0 or more"),  # two workers on one queue
        (["--shards", "-5"], "shard numbers are 0 or more"),  # a traceback before
        (["--max-concurrent-activities", "40"], "needs DATABASE_POOL_MAX_SIZE >= 42"),
        (["--max-concurrent-activities", "0"], "--max-concurrent-activities must be at least 1"),
        (["--max-concurrent-activities", "many"], "invalid int value: 'many'"),
        (["--queue-shards", "2.5"], "invalid int value: '2.5'"),
        (["--kind", "batch"], "invalid choice: 'batch'"),
        (["--graceful-timeout", "-1"], "seconds, 0 or more; got '-1'"),
        (["--graceful-timeout", "nan"], "seconds, 0 or more; got 'nan'"),
        (["--graceful-timeout", "inf"], "seconds, 0 or more; got 'inf'"),
        (["--graceful-timeout", "a minute"], "expected a number of seconds, got 'a minute'"),
    ],
)
def test_bad_options_are_command_errors(settings, args, message):
    settings.TEMPORAL_QUEUE_SHARDS = 4
    settings.DATABASES["default"]["OPTIONS"]["pool"] = {"max_size": 25}
    with pytest.raises(CommandError, match=message):
        call_command("run_temporal_worker", *args)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_worker_stops_with_an_error_when_its_relay_dies():
    """A relay thread that ends on its own must not leave a worker that starts nothing."""
    from orchestration.management.commands.run_temporal_worker import Command

    class DyingRelay:
        def run(self):
            raise RuntimeError("relay bug")

        def stop(self):
            pass

    options = {"max_concurrent_activities": 1, "graceful_timeout": 1.0, "sync_schedules": False}
    with pytest.raises(CommandError, match="outbox relay stopped unexpectedly"):
        run_async(Command().serve([], options, DyingRelay()))


def test_a_kind_named_twice_is_polled_once(settings):
    from orchestration.management.commands.run_temporal_worker import Command

    settings.TEMPORAL_QUEUE_SHARDS = 2
    options = {
        "kind": ["jobs", "jobs", "tenant"],
        "queue_shards": None,
        "shards": None,
        "max_concurrent_activities": 4,
    }
    queues = [queue for queue, _ in Command().plan(options)]
    assert len(queues) == len(set(queues)) == 3
