"""Errors the real Temporal dev server gives for one row's size are charged to that row
alone: it fails for good with the reason, the relay does not back off, and the other rows
start at once. The relays run in threads: ``transactional_db`` throughout."""

import contextlib
import logging
import threading
import time
import uuid

import pytest
from django.tasks import TaskResultStatus

from orchestration.models import OutboxEntry, OutboxStatus
from tests.kit import wait_until
from tests.tasks import sample_tasks
from tests.workers import relay_for

ERRORS = "tenantflow_relay_errors_total"
# Over gRPC's 4 MiB message limit (RESOURCE_EXHAUSTED, "… larger than max …"), and over the
# server's 2 MB blob limit but under gRPC's (INVALID_ARGUMENT, "Blob data size exceeds limit").
OVER_LIMITS = {
    "grpc_message": (5_000_000, "larger than max"),
    "blob": (3_000_000, "Blob data size exceeds limit"),
}


def relay_metric(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def small_rows(queue: str, count: int) -> list[OutboxEntry]:
    return [
        OutboxEntry.objects.create(
            workflow_type="W",
            workflow_id=f"small-{uuid.uuid4()}",
            task_queue=queue,
            fairness_key=f"tenant-{n}",
        )
        for n in range(count)
    ]


def status_of(*rows: OutboxEntry) -> set[str]:
    return set(
        OutboxEntry.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True)
    )


@contextlib.contextmanager
def relay_running(address: str):
    """A relay in a thread for the ``with`` block, stopped at its end."""
    relay = relay_for(address, poll_interval=0.2)
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        yield relay
    finally:
        relay.stop()
        thread.join(30)
    assert not thread.is_alive(), "the relay did not stop"


@pytest.mark.parametrize("limit", list(OVER_LIMITS))
def test_a_row_over_a_size_limit_fails_alone_and_the_relay_does_not_back_off(
    transactional_db, temporal, queue_prefix, caplog, limit
):
    size, reason = OVER_LIMITS[limit]
    queue = f"{queue_prefix}.sizes"
    oversized = OutboxEntry.objects.create(
        workflow_type="W",
        workflow_id=f"oversized-{uuid.uuid4()}",
        task_queue=queue,
        arguments={"blob": "x" * size},
    )
    first = small_rows(queue, 3)
    deployment_wide = relay_metric(ERRORS, kind="deployment_wide")
    caplog.set_level(logging.WARNING, logger="orchestration.relay")
    with relay_running(temporal):
        wait_until(
            lambda: (
                status_of(oversized) == {OutboxStatus.FAILED}
                and status_of(*first) == {OutboxStatus.STARTED}
            ),
            timeout=15,
            what="the oversized row to fail and the others to start",
        )
        # Rows written now start at once: no back-off holds them.
        written = time.monotonic()
        later = small_rows(queue, 3)
        wait_until(
            lambda: status_of(*later) == {OutboxStatus.STARTED},
            timeout=5,
            what="the rows written after it to start",
        )
        took = time.monotonic() - written
    oversized.refresh_from_db()
    assert (oversized.attempts, oversized.lease_owner) == (1, "")
    assert oversized.last_error.startswith("RPCError: ")
    assert reason in oversized.last_error
    assert took < 2, f"rows written after the oversized one took {took:.1f}s to start"
    assert "Temporal unreachable" not in caplog.text
    assert relay_metric(ERRORS, kind="deployment_wide") == deployment_wide


def test_a_task_whose_arguments_are_too_large_reads_failed_with_the_reason(
    transactional_db, temporal, caplog
):
    """A task row over gRPC's limit (written below the backend's own checks) fails, and its
    result says why; a task enqueued after it runs on."""
    result = sample_tasks.add.enqueue(1, 2)
    row = OutboxEntry.objects.get(workflow_id=result.id)
    row.arguments = {**row.arguments, "args": ["x" * 5_000_000, 2]}
    row.save(update_fields=["arguments"])
    after = sample_tasks.add.enqueue(3, 4)
    caplog.set_level(logging.WARNING, logger="orchestration.relay")
    with relay_running(temporal):
        wait_until(
            lambda: not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists(),
            timeout=15,
            what="both task rows to leave the outbox",
        )
    failed = result.task.get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    (error,) = failed.errors
    assert error.exception_class_path == "orchestration.tasks.TaskRunFailed"
    assert "larger than max" in error.traceback
    assert OutboxEntry.objects.get(workflow_id=after.id).status == OutboxStatus.STARTED
    assert after.task.get_result(after.id).status != TaskResultStatus.FAILED
    assert "Temporal unreachable" not in caplog.text
