"""The django.tasks backend against the real dev server: outbox, tenants, results."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.utils import timezone
from django_tenants.utils import schema_context

from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.outbox import enqueue_start
from orchestration.routing import deployment_system_route, deployment_tenant_route
from orchestration.tasks import for_tenant, temporal_priority
from orchestration.workflows.django_task import DjangoTaskInput, DjangoTaskWorkflow
from tenants.workspace.models import Project
from tests.kit import run_async, wait_until
from tests.tasks import sample_tasks
from tests.workers import (
    BackgroundWorker,
    describe,
    event_types,
    finished,
    relay_for,
    workflow_exists,
)


def test_backend_is_the_default_everywhere():
    from orchestration.tasks import TemporalTaskBackend

    assert isinstance(task_backends["default"], TemporalTaskBackend)


def test_priority_bands():
    assert [temporal_priority(p) for p in (100, 61, 60, 21, 20, 0, -20, -21, -60, -61, -100)] == [
        1,
        1,
        2,
        2,
        3,
        3,
        3,
        4,
        4,
        5,
        5,
    ]


def test_bad_argument_fails_at_enqueue_with_djangos_error(db):
    with pytest.raises(TypeError, match="Unsupported type"):
        sample_tasks.add.enqueue(object(), 1)
    assert not OutboxEntry.objects.exists()


def test_tenant_queue_without_a_tenant_is_refused(db):
    with pytest.raises(InvalidTask, match="no tenant is active"):
        sample_tasks.add.using(queue_name="tenant").enqueue(1, 2)


def test_rolled_back_enqueue_runs_nothing(transactional_db, temporal, queue_prefix):
    enqueued = []

    def enqueue_then_fail():
        with transaction.atomic():
            enqueued.append(sample_tasks.make_user.enqueue("rolled-back@example.com"))
            assert OutboxEntry.objects.filter(workflow_id=enqueued[0].id).exists()
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    (result,) = enqueued
    assert not OutboxEntry.objects.exists()
    relay = relay_for(temporal)
    assert relay.relay_once() == 0
    relay.close()
    assert not workflow_exists(temporal, result.id)
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)


def test_pending_row_is_answered_ready_then_the_run_succeeds(
    transactional_db, temporal, queue_prefix
):
    result = sample_tasks.add.using(priority=50).enqueue(2, 3)
    row = OutboxEntry.objects.get(workflow_id=result.id)
    assert row.task_queue == deployment_system_route().task_queue
    assert (row.priority_key, row.fairness_key) == (2, "")
    pending = sample_tasks.add.get_result(result.id)
    assert pending.status == TaskResultStatus.READY
    assert (pending.args, pending.attempts) == ([2, 3], 0)

    with BackgroundWorker(temporal, kinds=("jobs",)):
        finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.attempts == 1
    assert result.errors == []
    assert result.enqueued_at <= result.started_at <= result.finished_at


def test_task_that_raises_is_retried_by_its_policy_then_fails(
    transactional_db, temporal, queue_prefix, settings
):
    settings.TASKS = {
        "default": {
            **settings.TASKS["default"],
            "OPTIONS": {
                "RETRY": {"max_attempts": 5, "initial_interval": 1},
                "TASKS": {"tests.tasks.sample_tasks.boom": {"max_attempts": 2}},
            },
        }
    }
    result = sample_tasks.boom.enqueue("no good")
    with BackgroundWorker(temporal, kinds=("jobs",)):
        finished(result)
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 2
    assert [e.exception_class for e in result.errors] == [ValueError, ValueError]  # one each
    error = result.errors[-1]
    assert "no good" in error.traceback
    assert "sample_tasks.py" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value


def test_a_local_task_runs_in_its_workflow_task_with_its_retries(
    transactional_db, temporal, queue_prefix, settings
):
    """``"local": True``: the task is a local activity, in the run's one workflow task (no
    activity task on the queue); its retries and its failure are reported as for any."""
    settings.TASKS = {
        "default": {
            **settings.TASKS["default"],
            "OPTIONS": {
                "RETRY": {"initial_interval": 1, "local": True},
                "TASKS": {"tests.tasks.sample_tasks.boom": {"max_attempts": 2}},
            },
        }
    }
    flaky, boom = sample_tasks.flaky.enqueue(1), sample_tasks.boom.enqueue("no good")
    assert OutboxEntry.objects.get(workflow_id=flaky.id).arguments["local"] is True
    with BackgroundWorker(temporal, kinds=("jobs",)):
        finished(flaky)
        finished(boom)
    assert (flaky.status, flaky.return_value, flaky.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        2,
        2,
    )
    assert (boom.status, boom.attempts) == (TaskResultStatus.FAILED, 2)
    assert [e.exception_class for e in boom.errors] == [ValueError, ValueError]
    assert flaky.errors[0].exception_class is RuntimeError
    for result in (flaky, boom):
        events = event_types(temporal, result.id)
        assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" not in events
        assert "EVENT_TYPE_MARKER_RECORDED" in events  # the local activity's result


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_local_option_must_be_a_boolean(settings, value):
    from django.tasks.exceptions import InvalidTaskBackend

    from orchestration.tasks import TemporalTaskBackend

    params = {**settings.TASKS["default"], "OPTIONS": {"TASKS": {"a.b": {"local": value}}}}
    with pytest.raises(InvalidTaskBackend, match=r"TASKS\['a.b'\]\['local'\] must be True"):
        TemporalTaskBackend("default", params)


def test_context_gets_the_attempt_number(transactional_db, temporal, queue_prefix):
    result = sample_tasks.flaky.enqueue(1)
    with BackgroundWorker(temporal, kinds=("jobs",)):
        finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 2
    assert result.attempts == 2


def test_run_after_delays_the_start(transactional_db, temporal, queue_prefix):
    run_after = timezone.now() + timedelta(seconds=3)
    result = sample_tasks.add.using(run_after=run_after).enqueue(1, 1)
    with BackgroundWorker(temporal, kinds=("jobs",)):
        wait_until(
            lambda: OutboxEntry.objects.filter(status=OutboxStatus.STARTED).exists(),
            timeout=20,
            what="the row to be started",
        )
        result.refresh()
        if not result.is_finished:  # the run exists and waits: still ready
            assert result.status == TaskResultStatus.READY
        finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.started_at >= run_after
    assert describe(temporal, result.id).execution_time >= run_after - timedelta(seconds=1)


def test_unknown_task_path_fails_the_run_at_once(transactional_db, temporal, queue_prefix):
    ids = ["task-unknown-module", "task-not-a-task"]
    paths = ["tests.tasks.no_such_module.work", "tests.tasks.sample_tasks.not_a_task"]
    with transaction.atomic():
        for workflow_id, path in zip(ids, paths, strict=True):
            enqueue_start(
                DjangoTaskWorkflow,
                DjangoTaskInput(task_path=path, max_attempts=5),
                workflow_id=workflow_id,
                route=deployment_system_route(),
            )
    from temporalio.client import WorkflowFailureError

    from tests.workers import workflow_result

    with BackgroundWorker(temporal, kinds=("jobs",)):
        for workflow_id, message in zip(ids, ["cannot be imported", "not a @task"], strict=True):
            wait_until(
                lambda w=workflow_id: workflow_exists(temporal, w),
                timeout=30,
                what=f"the relay to start {workflow_id}",
            )
            with pytest.raises(WorkflowFailureError) as failure:
                run_async(workflow_result(temporal, workflow_id))
            cause = failure.value.cause.cause
            assert cause.type == "TaskNotFound"
            assert message in cause.message
            assert describe(temporal, workflow_id).raw_description.pending_activities == []


def test_tenant_task_runs_in_its_schema_on_its_queue(
    transactional_db, temporal, queue_prefix, active_tenant
):
    alpha, bravo = active_tenant("alpha"), active_tenant("bravo")
    with schema_context(alpha.schema_name):
        Project.objects.create(name="alpha-only")
    with schema_context(bravo.schema_name):
        Project.objects.create(name="bravo-only")
    with schema_context(alpha.schema_name):
        in_context = sample_tasks.tenant_view.enqueue()
    with for_tenant(bravo):
        explicit = sample_tasks.tenant_view.enqueue()
    public = sample_tasks.add.enqueue(1, 2)

    row = OutboxEntry.objects.get(workflow_id=in_context.id)
    assert row.task_queue == deployment_tenant_route(alpha.pk).task_queue
    assert row.fairness_key == str(alpha.pk)
    assert OutboxEntry.objects.get(workflow_id=public.id).fairness_key == ""
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        for result in (in_context, explicit, public):
            finished(result)
    assert in_context.return_value == {"schema": alpha.schema_name, "projects": ["alpha-only"]}
    assert explicit.return_value == {"schema": bravo.schema_name, "projects": ["bravo-only"]}
    desc = describe(temporal, in_context.id)
    assert desc.task_queue == deployment_tenant_route(alpha.pk).task_queue
    assert desc.raw_info.priority.fairness_key == str(alpha.pk)


def test_aenqueue_writes_the_row_too(transactional_db, temporal, queue_prefix):
    from asgiref.sync import async_to_sync

    # async_to_sync: the backend's sync part runs back on this thread, with its connection.
    result = async_to_sync(sample_tasks.add.aenqueue)(4, 4)
    assert OutboxEntry.objects.filter(workflow_id=result.id).exists()
    read = async_to_sync(sample_tasks.add.aget_result)(result.id)
    assert (read.status, read.args) == (TaskResultStatus.READY, [4, 4])
