"""Reading a ``django.tasks`` task's run (``DjangoTaskWorkflow``) on Temporal.

Only ``TemporalTaskBackend.get_result`` calls this (a caller that asked for a result, never a
request on its own account): ``run_end`` to learn whether the run of an unfinished result
has ended without its activity recording it; ``read_run`` for a task that has no record,
its state from the run: one ``describe``, plus its result once it has closed. While the run
is open that state comes from its pending activity: ``READY`` while the activity waits for
a worker, for ``run_after`` or between attempts, ``RUNNING`` while an attempt runs, with the
last attempt's error so far.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.tasks import TaskResultStatus
from django.tasks.base import TaskError
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from orchestration.client import shared
from orchestration.errors import TASK_NOT_FOUND


@dataclass
class RunState:
    status: TaskResultStatus
    started_at: datetime | None = None
    last_attempted_at: datetime | None = None
    finished_at: datetime | None = None
    errors: list[TaskError] = field(default_factory=list)
    worker_ids: list[str] = field(default_factory=list)
    value: Any = None
    input: dict = field(default_factory=dict)  # the run's input, when asked for


def task_error(exc: BaseException) -> TaskError:
    """The error of a failed attempt as Django describes one: the task's exception class
    path and traceback (the activity puts them in the failure's details), or, for a failure
    that is not the task's own, this backend's exception and Temporal's message."""
    while isinstance(exc, FailureError) and not isinstance(exc, ApplicationError):
        if exc.cause is None:
            break
        exc = exc.cause
    if isinstance(exc, ApplicationError) and len(exc.details) >= 2:
        path, trace = exc.details[0], exc.details[1]
        return TaskError(exception_class_path=str(path), traceback=str(trace))
    kind = "TaskNotFound" if getattr(exc, "type", None) == TASK_NOT_FOUND else "TaskRunFailed"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return TaskError(exception_class_path=f"orchestration.tasks.{kind}", traceback=message)


def _workers_of(exc: BaseException) -> list[str]:
    """The failed run's attempts, as Django counts them (one worker id per attempt), from
    the details the activity put on its last failure."""
    while isinstance(exc, FailureError) and not isinstance(exc, ApplicationError):
        if exc.cause is None:
            break
        exc = exc.cause
    if isinstance(exc, ApplicationError) and len(exc.details) >= 4:
        return [str(exc.details[3])] * int(exc.details[2])
    return []


def _time(ts) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if ts.seconds or ts.nanos else None


async def _described(workflow_id: str):
    """``(client, handle, description)`` of the run ``workflow_id``; None when Temporal has
    no such run."""
    client = await shared()
    handle = client.get_workflow_handle(workflow_id)
    try:
        return client, handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def run_end(workflow_id: str) -> tuple[TaskError | None, datetime | None] | None:
    """None while the run ``workflow_id`` is open (or unknown to Temporal); once it has
    closed, ``(None, close time)`` if it completed, else ``(its error, close time)``."""
    if (found := await _described(workflow_id)) is None:
        return None
    client, handle, desc = found
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return None
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        return None, desc.close_time
    return (await _state(client, handle, desc)).errors[0], desc.close_time


async def read_run(workflow_id: str, *, need_input: bool) -> RunState | None:
    """The state of the run ``workflow_id``; None when Temporal has no such run."""
    if (found := await _described(workflow_id)) is None:
        return None
    client, handle, desc = found
    state = await _state(client, handle, desc)
    if need_input:  # the outbox row was pruned: the input is the run's first event
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input
            (state.input,) = await client.data_converter.decode_wrapper(payloads, [dict])
            break
    return state


async def _state(client, handle, desc) -> RunState:
    if desc.status == WorkflowExecutionStatus.RUNNING:
        pending = desc.raw_description.pending_activities
        if not pending:  # waiting for run_after or for its first workflow task
            return RunState(status=TaskResultStatus.READY)
        activity = pending[0]
        running = activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        attempts = activity.attempt if running else activity.attempt - 1
        last = _time(activity.last_started_time)
        errors = []
        if activity.HasField("last_failure"):
            errors.append(
                task_error(await client.data_converter.decode_failure(activity.last_failure))
            )
        return RunState(
            status=TaskResultStatus.RUNNING if running else TaskResultStatus.READY,
            started_at=last,
            last_attempted_at=last,
            errors=errors,
            worker_ids=[activity.last_worker_identity] * attempts,
        )
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        out = await handle.result()
        started = datetime.fromisoformat(out["started_at"])
        return RunState(
            status=TaskResultStatus.SUCCESSFUL,
            started_at=started,
            last_attempted_at=started,
            finished_at=desc.close_time,
            worker_ids=[out["worker"]] * out["attempt"],
            value=out["value"],
        )
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
    else:  # a run that closed in another way than completing or failing
        cause = ApplicationError(f"the run ended {desc.status.name.lower()}")
    error = task_error(cause)
    if desc.status != WorkflowExecutionStatus.FAILED:
        error = TaskError(
            exception_class_path="orchestration.tasks.TaskRunFailed",
            traceback=f"the run ended {desc.status.name.lower()}",
        )
    return RunState(
        status=TaskResultStatus.FAILED,
        finished_at=desc.close_time,
        errors=[error],
        worker_ids=_workers_of(cause),
    )
