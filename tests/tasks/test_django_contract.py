"""Django's own tests for ``django.tasks`` (django/django, ``tests/tasks/``, 6.1.3), ported
to ``TemporalTaskBackend``: a real backend, whose tasks run on a worker after commit.

Each test names the Django test it comes from (``test_tasks.TaskTestCase.test_x``;
``test_immediate_backend.ImmediateBackendTestCase.test_x`` for what a task that *ran* must
look like; ``test_dummy_backend.DummyBackendTestCase.test_x`` for a task that waits). The
Django tests that do not apply to this backend are listed in docs/tasks.md ("Django's
contract"). After them, the cases Django's tests leave out that a backend with retries, a
database and Temporal limits must get right.
"""

import dataclasses
import logging
import math
import pickle
import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.tasks import TaskResultStatus, default_task_backend, task
from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY
from django.tasks.exceptions import (
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
    TaskResultMismatch,
)
from django.tasks.signals import task_enqueued, task_finished
from django.utils import timezone

from orchestration.models import OutboxEntry, TaskRecord
from tests.kit import run_async, wait_until
from tests.tasks import sample_tasks as test_tasks
from tests.workers import BackgroundWorker, finished, relay_for

pytestmark = pytest.mark.usefixtures("queue_prefix")


@pytest.fixture
def tasks_options(settings):
    """``tasks_options(**OPTIONS)``: the default backend with these options."""

    def set_options(**options):
        settings.TASKS = {"default": {**settings.TASKS["default"], "OPTIONS": options}}

    return set_options


@pytest.fixture
def no_retries(tasks_options):
    """One attempt per task, as Django's own backends make."""
    tasks_options(RETRY={"max_attempts": 1})


def run_all(temporal, *results):
    with BackgroundWorker(temporal, kinds=("jobs",)):
        for result in results:
            finished(result)
    return results


def assert_ran_in_order(result):
    assert result.is_finished is True
    assert result.started_at is not None
    assert result.last_attempted_at is not None
    assert result.finished_at is not None
    assert result.started_at >= result.enqueued_at
    assert result.finished_at >= result.started_at


# --- enqueue, before any worker ----------------------------------------------------------


def test_enqueue_task(db):
    """test_tasks.TaskTestCase.test_enqueue_task; test_dummy_backend.DummyBackendTestCase
    .test_enqueue_task (what a waiting result holds)."""
    for noop in (test_tasks.noop_task, test_tasks.noop_task_async):
        result = noop.enqueue(1, two=3)
        assert result.status == TaskResultStatus.READY
        assert result.task == noop
        assert (result.args, result.kwargs) == ([1], {"two": 3})
        assert result.started_at is None
        assert result.finished_at is None
        with pytest.raises(ValueError, match="Task has not finished yet"):
            _ = result.return_value


def test_enqueue_task_async(db):
    """test_tasks.TaskTestCase.test_enqueue_task_async."""
    result = async_to_sync(test_tasks.noop_task.aenqueue)()
    assert result.status == TaskResultStatus.READY
    assert result.task == test_tasks.noop_task
    assert (result.args, result.kwargs) == ([], {})


def test_enqueue_with_invalid_argument(db):
    """test_tasks.TaskTestCase.test_enqueue_with_invalid_argument and
    test_aenqueue_with_invalid_argument."""
    with pytest.raises(TypeError, match="Unsupported type"):
        test_tasks.noop_task.enqueue(timezone.now())
    with pytest.raises(TypeError, match="Unsupported type"):
        async_to_sync(test_tasks.noop_task.aenqueue)(timezone.now())


def test_using_run_after_priority_and_queue(db):
    """test_tasks.TaskTestCase.test_using_priority, test_using_queue_name,
    test_using_run_after, test_chained_using, test_using_creates_new_instance: ``using()``
    is accepted by this backend (defer, priority, its queues) and changes only the copy."""
    now = timezone.now()
    noop = test_tasks.noop_task
    chained = noop.using(run_after=now).using(priority=10).using(queue_name="jobs")
    assert (chained.run_after, chained.priority, chained.queue_name) == (now, 10, "jobs")
    assert (noop.run_after, noop.priority, noop.queue_name) == (None, 0, "default")
    assert noop.using() == noop
    assert noop.using() is not noop


def test_invalid_tasks_are_refused():
    """test_tasks.TaskTestCase.test_naive_datetime, test_invalid_priority,
    test_unknown_queue_name, test_invalid_function, test_takes_context_without_taking_context,
    test_run_after_in_decorator; test_immediate_backend.ImmediateBackendTestCase
    .test_validate_on_enqueue and test_validate_on_aenqueue."""
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        test_tasks.noop_task.using(run_after=timezone.make_naive(timezone.now()))
    message = re.escape(
        f"priority must be a whole number between {TASK_MIN_PRIORITY} and {TASK_MAX_PRIORITY}."
    )
    for priority in (-101, 101, 3.1):
        with pytest.raises(InvalidTask, match=message):
            test_tasks.noop_task.using(priority=priority)
    for priority in (100, -100, 0):
        test_tasks.noop_task.using(priority=priority)
    with pytest.raises(InvalidTask, match="Queue 'queue-2' is not valid for backend"):
        test_tasks.noop_task.using(queue_name="queue-2")
    for invalid_function in (any, lambda: None):
        with pytest.raises(InvalidTask, match="Task function must be defined at a module level"):
            task()(invalid_function)
    with pytest.raises(InvalidTask, match="Task takes context but does not have a first"):
        task(takes_context=True)(test_tasks.calculate_meaning_of_life.func)
    with pytest.raises(TypeError, match="run_after cannot be defined statically"):
        task(run_after=timezone.now())(test_tasks.calculate_meaning_of_life.func)


def test_get_result(db):
    """test_tasks.TaskTestCase.test_get_result and test_get_result_async;
    test_dummy_backend.DummyBackendTestCase.test_get_result: the result read back equals
    the one ``enqueue()`` returned."""
    result = default_task_backend.enqueue(test_tasks.noop_task, (), {})
    assert test_tasks.noop_task.get_result(result.id) == result
    result = async_to_sync(default_task_backend.aenqueue)(test_tasks.noop_task, (), {})
    assert async_to_sync(test_tasks.noop_task.aget_result)(result.id) == result


def test_refresh_result(db):
    """test_tasks.TaskTestCase.test_refresh_result: refreshing a waiting result changes
    nothing."""
    result = test_tasks.noop_task.enqueue()
    original = dataclasses.asdict(result)
    result.refresh()
    assert dataclasses.asdict(result) == original
    async_to_sync(result.arefresh)()
    assert dataclasses.asdict(result) == original


def test_get_missing_result(db, temporal):
    """test_tasks.TaskTestCase.test_get_missing_result; test_dummy_backend
    .DummyBackendTestCase.test_get_missing_result."""
    for result_id in ("123", "task-00000000-0000-0000-0000-000000000000"):
        with pytest.raises(TaskResultDoesNotExist):
            test_tasks.noop_task.get_result(result_id)
        with pytest.raises(TaskResultDoesNotExist):
            async_to_sync(test_tasks.noop_task.aget_result)(result_id)


def test_get_incorrect_result(db):
    """test_tasks.TaskTestCase.test_get_incorrect_result and
    test_get_incorrect_result_async."""
    result = default_task_backend.enqueue(test_tasks.noop_task_async, (), {})
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        test_tasks.noop_task.get_result(result.id)
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        async_to_sync(test_tasks.noop_task.aget_result)(result.id)


def test_pickle_task_result(db):
    """test_tasks.TaskTestCase.test_pickle_task and test_pickle_task_result."""
    result = test_tasks.noop_task.enqueue()
    # Bytes this test made itself.
    assert pickle.loads(pickle.dumps(test_tasks.noop_task)) == test_tasks.noop_task  # noqa: S301
    assert pickle.loads(pickle.dumps(result)) == result  # noqa: S301


# --- what a task that ran looks like -----------------------------------------------------


def test_enqueue_task_runs(transactional_db, temporal, no_retries):
    """test_immediate_backend.ImmediateBackendTestCase.test_enqueue_task and
    test_enqueue_task_async."""
    results = [
        test_tasks.noop_task.enqueue(1, two=3),
        test_tasks.noop_task_async.enqueue(1, two=3),
        async_to_sync(test_tasks.noop_task.aenqueue)(),
    ]
    run_all(temporal, *results)
    for result in results:
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert_ran_in_order(result)
        assert result.return_value is None
        assert result.attempts == 1
    assert (results[0].args, results[0].kwargs) == ([1], {"two": 3})
    assert results[1].task == test_tasks.noop_task_async


def test_catches_exception(transactional_db, temporal, no_retries, caplog):
    """test_immediate_backend.ImmediateBackendTestCase.test_catches_exception: ValueError
    and SystemExit, each its class and traceback, one ERROR log line each."""
    cases = [
        (test_tasks.failing_task_value_error, ValueError, "This Task failed due to ValueError"),
        (test_tasks.failing_task_system_exit, SystemExit, "This Task failed due to SystemExit"),
    ]
    results = [case[0].enqueue() for case in cases]
    with caplog.at_level(logging.ERROR, logger="django.tasks"):
        run_all(temporal, *results)
    errors = [r for r in caplog.records if r.name == "django.tasks" and r.levelno >= logging.ERROR]
    for result, (failing, exception, message) in zip(results, cases, strict=True):
        (logged,) = [r for r in errors if result.id in r.getMessage()]
        assert message in logged.exc_text
        assert result.status == TaskResultStatus.FAILED
        with pytest.raises(ValueError, match="Task failed"):
            _ = result.return_value
        assert_ran_in_order(result)
        assert result.errors[0].exception_class is exception
        assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
        assert (result.task, result.args, result.kwargs) == (failing, [], {})


def test_complex_exception_and_return_value(transactional_db, temporal, no_retries):
    """test_immediate_backend.ImmediateBackendTestCase.test_complex_exception and
    test_complex_return_value (a return value that is no JSON fails the task)."""
    exc, value = test_tasks.complex_exception.enqueue(), test_tasks.complex_return_value.enqueue()
    run_all(temporal, exc, value)
    for result in (exc, value):
        assert result.status == TaskResultStatus.FAILED
        assert_ran_in_order(result)
        assert result._return_value is None
    assert exc.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in exc.errors[0].traceback
    assert value.errors[0].exception_class is TypeError
    assert "Unsupported type" in value.errors[0].traceback


def test_result(transactional_db, temporal):
    """test_immediate_backend.ImmediateBackendTestCase.test_result and test_result_async;
    test_dummy_backend.DummyBackendTestCase.test_refresh_result (refresh() picks up what
    the worker did)."""
    result = default_task_backend.enqueue(test_tasks.calculate_meaning_of_life, [], {})
    other = async_to_sync(default_task_backend.aenqueue)(
        test_tasks.calculate_meaning_of_life, [], {}
    )
    assert result.status == TaskResultStatus.READY
    run_all(temporal, result, other)
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    assert (other.status, other.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


def test_takes_context(transactional_db, temporal):
    """test_immediate_backend.ImmediateBackendTestCase.test_takes_context and
    test_context."""
    task_id = test_tasks.get_task_id.enqueue()
    context = test_tasks.check_context.enqueue(1)
    run_all(temporal, task_id, context)
    assert task_id.return_value == task_id.id
    assert context.status == TaskResultStatus.SUCCESSFUL


def test_enqueue_and_failed_logs(transactional_db, temporal, no_retries, caplog):
    """test_immediate_backend.ImmediateBackendTestCase.test_enqueue_logs, test_failed_logs,
    test_successful_task_no_none_type_in_logs; test_dummy_backend.DummyBackendTestCase
    .test_enqueue_logs (one line at enqueue)."""
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        ok = test_tasks.noop_task.enqueue()
        failed = test_tasks.failing_task_value_error.enqueue()
        assert [r.getMessage() for r in caplog.records if r.name == "django.tasks"] == [
            f"Task id={ok.id} path={ok.task.module_path} enqueued backend=default",
            f"Task id={failed.id} path={failed.task.module_path} enqueued backend=default",
        ]
        run_all(temporal, ok, failed)
    for result, end in ((ok, "state=SUCCESSFUL"), (failed, "state=FAILED")):
        lines = [
            r.getMessage()
            for r in caplog.records
            if r.name == "django.tasks" and result.id in r.getMessage()
        ]
        assert len(lines) == 3, lines
        assert "enqueued" in lines[0]
        assert "state=RUNNING" in lines[1]
        assert end in lines[2]
        assert not any("NoneType" in line for line in lines)


# --- beyond Django's own cases -------------------------------------------------------------


def test_a_failed_result_has_its_first_start_and_its_last(
    transactional_db, temporal, tasks_options
):
    tasks_options(RETRY={"max_attempts": 2, "initial_interval": 1})
    (result,) = run_all(temporal, test_tasks.boom.enqueue("twice"))
    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 2)
    assert result.enqueued_at <= result.started_at < result.last_attempted_at
    assert result.last_attempted_at <= result.finished_at


def test_one_error_per_failed_attempt_and_task_finished_carries_them(
    transactional_db, temporal, tasks_options, caplog
):
    """Each attempt's ``task_finished``: a failed attempt that another follows is READY
    (logged below ERROR), the last one FAILED (at ERROR), each with every error so far."""
    tasks_options(RETRY={"max_attempts": 2, "initial_interval": 1})
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((task_result.id, task_result.status, len(task_result.errors)))

    task_finished.connect(receiver)
    try:
        fixed, failed = test_tasks.flaky.enqueue(1), test_tasks.boom.enqueue("no good")
        with caplog.at_level(logging.INFO):
            run_all(temporal, fixed, failed)
    finally:
        task_finished.disconnect(receiver)
    assert [s[1:] for s in seen if s[0] == fixed.id] == [
        (TaskResultStatus.READY, 1),
        (TaskResultStatus.SUCCESSFUL, 1),
    ]
    assert [s[1:] for s in seen if s[0] == failed.id] == [
        (TaskResultStatus.READY, 1),
        (TaskResultStatus.FAILED, 2),
    ]
    assert (fixed.status, fixed.return_value) == (TaskResultStatus.SUCCESSFUL, 2)
    (error,) = fixed.errors
    assert error.exception_class is RuntimeError
    assert "attempt 1 fails" in error.traceback
    assert [e.exception_class for e in failed.errors] == [ValueError, ValueError]
    at_error = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [failed.id in r.getMessage() for r in at_error] == [True], at_error


def test_get_result_keeps_run_after(db):
    run_after = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    result = test_tasks.noop_task.using(run_after=run_after).enqueue()
    read = test_tasks.noop_task.get_result(result.id)
    assert read.task.run_after == run_after
    assert read == result


def test_a_task_whose_module_is_gone_reads_failed(transactional_db, temporal):
    """A task's module removed (or renamed) after enqueue: its run fails on the worker, and
    its result still reads, FAILED with ``TaskNotFound``, its task a stand-in with the same
    path."""
    result = test_tasks.noop_task.enqueue()
    gone = "tests.tasks.removed_module.noop_task"
    TaskRecord.objects.filter(pk=result.id).update(task_path=gone)
    row = OutboxEntry.objects.get(workflow_id=result.id)
    row.arguments["task_path"] = gone
    row.save()
    with BackgroundWorker(temporal, kinds=("jobs",)):
        wait_until(
            lambda: default_task_backend.get_result(result.id).is_finished,
            timeout=60,
            what="the run to fail",
        )
    read = default_task_backend.get_result(result.id)
    assert read.status == TaskResultStatus.FAILED
    assert read.task.module_path == gone
    (error,) = read.errors
    assert error.exception_class_path == "orchestration.tasks.TaskNotFound"
    assert "cannot be imported" in error.traceback
    from orchestration.tasks import TaskNotFound

    with pytest.raises(TaskNotFound):
        read.task.call()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["a\x00b"], "NUL character"),
        ([{"k\x00": 1}], "NUL character"),
        ([math.nan], "Out of range float values"),
        ([{"x": [math.inf]}], "Out of range float values"),
    ],
)
def test_what_postgresql_cannot_store_is_refused_before_any_write(db, args, problem):
    """As Django's ``normalize_json`` / ``json.dumps(allow_nan=False)`` say: ``ValueError``,
    and the caller's transaction is left usable (no database error inside it)."""
    with transaction.atomic():
        with pytest.raises(ValueError, match=problem):
            test_tasks.noop_task.enqueue(*args)
        with connection.cursor() as cursor:  # the transaction is not broken
            cursor.execute("SELECT 1")
    assert not OutboxEntry.objects.exists()
    assert not TaskRecord.objects.exists()


def test_arguments_over_the_limit_are_refused_before_any_write(db, tasks_options):
    tasks_options(MAX_ARGUMENT_BYTES=2000)
    test_tasks.noop_task.enqueue("x" * 1000)
    over = r"over the backend's MAX_ARGUMENT_BYTES \(2000\)"
    with transaction.atomic(), pytest.raises(ValueError, match=over):
        test_tasks.noop_task.enqueue("x" * 2000)
    assert OutboxEntry.objects.count() == TaskRecord.objects.count() == 1


def test_a_return_value_over_the_limit_fails_the_task(transactional_db, temporal, tasks_options):
    tasks_options(MAX_ARGUMENT_BYTES=2000, RETRY={"max_attempts": 1})
    fits, over = test_tasks.text_of_length.enqueue(1000), test_tasks.text_of_length.enqueue(3000)
    run_all(temporal, fits, over)
    assert fits.status == TaskResultStatus.SUCCESSFUL
    assert over.status == TaskResultStatus.FAILED
    assert over.errors[0].exception_class is ValueError
    assert "MAX_ARGUMENT_BYTES (2000)" in over.errors[0].traceback


def test_the_default_limit_is_temporals_blob_limit(db):
    from orchestration.tasks import TemporalTaskBackend

    assert default_task_backend.max_argument_bytes == 2 * 1024 * 1024
    with pytest.raises(ValueError, match="MAX_ARGUMENT_BYTES"):
        test_tasks.noop_task.enqueue("x" * (2 * 1024 * 1024))
    for option in ("MAX_ARGUMENT_BYTES", "RESULT_RETENTION_DAYS"):
        for value in (0, "1", True):
            with pytest.raises(InvalidTaskBackend, match=f"{option} must be a positive"):
                TemporalTaskBackend("x", {"OPTIONS": {option: value}})


def test_task_enqueued_is_sent_after_commit_only(transactional_db):
    sent = []

    def receiver(sender, task_result, **kwargs):
        sent.append(task_result.id)

    enqueued = []

    def enqueue_then_roll_back():
        with transaction.atomic():
            enqueued.append(test_tasks.noop_task.enqueue())
            raise RuntimeError("roll back")

    task_enqueued.connect(receiver)
    try:
        with pytest.raises(RuntimeError):
            enqueue_then_roll_back()
        assert sent == []
        with transaction.atomic():
            committed = test_tasks.noop_task.enqueue()
            assert sent == []
        assert sent == [committed.id]
    finally:
        task_enqueued.disconnect(receiver)
    assert enqueued[0].id not in sent


def test_a_terminated_run_reads_failed_and_is_recorded(transactional_db, temporal):
    from temporalio.client import Client

    result = test_tasks.noop_task.enqueue()
    relay = relay_for(temporal)
    assert relay.relay_once() == 1
    relay.close()

    async def terminate():
        client = await Client.connect(temporal)
        await client.get_workflow_handle(result.id).terminate(reason="by hand")

    run_async(terminate())
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    (error,) = result.errors
    assert error.exception_class_path == "orchestration.tasks.TaskRunFailed"
    assert "terminated" in error.traceback
    assert TaskRecord.objects.get(pk=result.id).status == TaskResultStatus.FAILED


def test_prune_deletes_exactly_the_stale_results(db):
    from orchestration.task_results import delete_stale

    now = timezone.now()
    old, recent = now - timedelta(days=8), now - timedelta(days=6)

    def record(name, **fields):
        TaskRecord.objects.create(id=f"task-{name}", task_path="a.b", **fields)
        return f"task-{name}"

    kept = [
        record("finished-recently", status="SUCCESSFUL", finished_at=recent),
        record("waiting", status="READY"),
        record("waits-for-later", status="READY", run_after=now + timedelta(days=1)),
        record("other-backend", status="FAILED", finished_at=old, backend="other"),
    ]
    stale = [
        record("finished-long-ago", status="SUCCESSFUL", finished_at=old),
        record("failed-long-ago", status="FAILED", finished_at=old),
        record("abandoned", status="RUNNING"),
    ]
    TaskRecord.objects.filter(pk__in=kept[2:3] + stale[2:]).update(updated_at=old)
    assert delete_stale(backend="default", retention=timedelta(days=7), batch_size=2) == 2
    assert delete_stale(backend="default", retention=timedelta(days=7), batch_size=2) == 1
    assert delete_stale(backend="default", retention=timedelta(days=7), batch_size=2) == 0
    assert sorted(TaskRecord.objects.values_list("pk", flat=True)) == sorted(kept)


def test_the_prune_is_scheduled_with_each_backends_retention(settings, tasks_options):
    from orchestration.schedules import project_schedules, task_results_schedule_id

    tasks_options(RESULT_RETENTION_DAYS=3)
    schedule = project_schedules()[task_results_schedule_id()]
    assert schedule.action.workflow == "TaskResultsPruneWorkflow"
    (params,) = schedule.action.args
    assert params.retention_seconds == {"default": 3 * 24 * 3600}
    assert schedule.spec.intervals[0].every == timedelta(hours=1)
