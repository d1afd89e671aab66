"""A ``django.tasks`` backend on Temporal, through the outbox, tenant-aware.

``enqueue()`` writes an outbox row in the caller's transaction (nothing talks to Temporal
in a request): a rollback runs nothing, a commit runs the task exactly once, even with
Temporal down at the time (the relay starts it when it is back). Each task is one
``DjangoTaskWorkflow`` run whose workflow id is the result id (``task-<uuid>``).

Tenants: a task enqueued while a tenant's schema is active (a request on a tenant host,
``schema_context``, or ``for_tenant(tenant)``) runs in that schema, on the tenant's shard
queue with the tenant as fairness key; other tasks run on the jobs queue. ``queue_name``
picks the queue kind: ``default`` (the tenant's queue when there is a tenant, else jobs),
``tenant`` (a tenant is required) or ``jobs``. Django's priority (-100…100, higher first)
becomes a Temporal priority key (1…5, 1 first).

Results are read from the database (``TaskRecord``, ``get_result``, ``refresh()``), written
at ``enqueue()`` and by each attempt: ready while the task waits (in the outbox, for
``run_after``, for a worker, between attempts), running, successful with the return value,
or failed, with one error (class path and traceback) per failed attempt. Kept
``RESULT_RETENTION_DAYS`` after they finish (``TaskResultsPruneWorkflow``, on a schedule).

Options (``TASKS[alias]["OPTIONS"]``)::

    "RETRY": {"max_attempts": 3, "initial_interval": 1, "maximum_interval": 60,
              "timeout": 300},            # seconds; the activity's policy for every task
    "TASKS": {"app.tasks.send_report": {"max_attempts": 10, "timeout": 3600},  # per task
              "app.tasks.touch": {"local": True}},
    "MAX_ARGUMENT_BYTES": 2097152,  # the run's input as JSON; over it enqueue() refuses
    "RESULT_RETENTION_DAYS": 7,     # results are deleted this long after they finish

``"while_suspended": True`` (per task) runs the task even while its tenant is suspended;
other tasks of a suspended tenant wait for its reactivation (``orchestration.task_holds``).

``"local": True`` (in ``RETRY`` for every task, or per task) runs the task as a *local*
activity, inside the workflow task that starts its run: one dispatch by the server instead
of three (workflow task, activity, workflow task), so short tasks start sooner and a
tenant's backlog drains faster (docs/benchmarks.md). For tasks of seconds, not minutes: its
retries after the first minute wait on timers, and a killed worker is noticed by the
workflow task's timeout.
"""

import contextlib
import dataclasses
import types
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tenants.utils import get_public_schema_name
from temporalio.common import Priority

from orchestration.models import OutboxEntry, OutboxKind, OutboxStatus, TaskRecord
from orchestration.outbox import enqueue_start, workflow_type
from orchestration.routing import Route, deployment_system_route, deployment_tenant_route
from orchestration.task_results import (
    FINISHED,
    MAX_ARGUMENT_BYTES,
    check_json,
    errors_of,
    run_ended,
)
from orchestration.task_runs import RunState, read_run, run_end
from orchestration.workflows.django_task import DjangoTaskInput, DjangoTaskWorkflow
from tenants.models import Tenant

QUEUES = ("default", "tenant", "jobs")
RETRY_DEFAULTS = {
    "max_attempts": 3,
    "initial_interval": 1,
    "maximum_interval": 60,
    "timeout": 300,
    "local": False,
    "while_suspended": False,
}
_FLAGS = ("local", "while_suspended")
RESULT_RETENTION_DAYS = 7
RESULT_PREFIX = "task-"
TASK_WORKFLOW = workflow_type(DjangoTaskWorkflow)

# Django priority (higher first) -> Temporal priority key (1 first), by band.
_PRIORITY_BANDS = ((61, 1), (21, 2), (-20, 3), (-60, 4))


class TaskNotFound(Exception):
    """The worker could not import the task's module path, or it names no ``@task``."""


class TaskRunFailed(Exception):
    """The run ended without the task's own error: its tenant is gone, it timed out, it was
    terminated or cancelled, or Temporal refused to start it."""


def temporal_priority(priority: int) -> int:
    """Django's -100…100 (higher first) as a Temporal priority key 1…5 (1 first); Django's
    default 0 is Temporal's default 3."""
    return next((key for floor, key in _PRIORITY_BANDS if priority >= floor), 5)


# --- which tenant a task is for ---------------------------------------------------------


@dataclass(frozen=True)
class TenantRef:
    tenant_id: str
    schema_name: str


_explicit: ContextVar[TenantRef | None] = ContextVar("orchestration_task_tenant", default=None)
_schema_tenants: dict[str, str] = {}  # schema -> tenant id; a schema never changes owner


@contextlib.contextmanager
def for_tenant(tenant: Tenant) -> Iterator[None]:
    """Tasks enqueued inside run for ``tenant`` (its schema, its queue), without switching
    this connection's schema."""
    token = _explicit.set(TenantRef(str(tenant.pk), tenant.schema_name))
    try:
        yield
    finally:
        _explicit.reset(token)


def current_tenant() -> TenantRef | None:
    """The tenant tasks enqueued now are for: ``for_tenant``'s, else the active schema's
    (a request on a tenant host, ``schema_context``), else none."""
    if (explicit := _explicit.get()) is not None:
        return explicit
    schema = getattr(connection, "schema_name", None)
    if not schema or schema == get_public_schema_name():
        return None
    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Tenant):
        return TenantRef(str(tenant.pk), tenant.schema_name)
    if schema not in _schema_tenants:  # schema_context() sets only the schema's name
        found = Tenant.objects.filter(schema_name=schema).values_list("pk", flat=True).first()
        if found is None:
            raise InvalidTask(f"Schema {schema!r} is active but belongs to no tenant.")
        _schema_tenants[schema] = str(found)
    return TenantRef(_schema_tenants[schema], schema)


# --- the backend -------------------------------------------------------------------------


class TemporalTaskBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias, params):
        super().__init__(alias, params)
        if "QUEUES" not in params:
            self.queues = set(QUEUES)
        if unknown := self.queues - set(QUEUES):
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]: QUEUES {sorted(unknown)} are not among {list(QUEUES)}."
            )
        self.max_argument_bytes = self._positive("MAX_ARGUMENT_BYTES", MAX_ARGUMENT_BYTES)
        self.result_retention_days = self._positive("RESULT_RETENTION_DAYS", RESULT_RETENTION_DAYS)
        self.retry = self._retry_options(self.options.get("RETRY", {}), "RETRY")
        self.per_task = {
            path: self._retry_options(overrides, f"TASKS[{path!r}]")
            for path, overrides in self.options.get("TASKS", {}).items()
        }

    def _positive(self, option: str, default: int) -> int:
        value = self.options.get(option, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidTaskBackend(
                f"TASKS[{self.alias!r}] OPTIONS {option} must be a positive integer, got {value!r}."
            )
        return value

    def _retry_options(self, given: dict, where: str) -> dict:
        if unknown := set(given) - set(RETRY_DEFAULTS):
            raise InvalidTaskBackend(
                f"TASKS[{self.alias!r}] OPTIONS {where}: unknown {sorted(unknown)}; "
                f"known: {sorted(RETRY_DEFAULTS)}."
            )
        for key, value in given.items():
            if key in _FLAGS:
                if not isinstance(value, bool):
                    raise InvalidTaskBackend(
                        f"TASKS[{self.alias!r}] OPTIONS {where}[{key!r}] must be True or "
                        f"False, got {value!r}."
                    )
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidTaskBackend(
                    f"TASKS[{self.alias!r}] OPTIONS {where}[{key!r}] must be a positive "
                    f"integer, got {value!r}."
                )
        base = getattr(self, "retry", RETRY_DEFAULTS)
        return {**base, **given}

    def enqueue(self, task, args, kwargs):
        """Write the task's start to the outbox in the caller's transaction (or, outside
        one, in a transaction of its own, committed at once). Arguments that do not
        round-trip through JSON fail here, with Django's own error."""
        self.validate_task(task)
        tenant = current_tenant()
        if task.queue_name == "tenant" and tenant is None:
            raise InvalidTask(
                f"{task.module_path} is on the 'tenant' queue but no tenant is active: "
                "enqueue it in the tenant's schema (schema_context, a tenant host) or "
                "inside orchestration.tasks.for_tenant(tenant)."
            )
        now = timezone.now()
        # TaskResult normalises the arguments: a TypeError/ValueError here for bad ones.
        result = TaskResult(
            task=task,
            id=f"{RESULT_PREFIX}{uuid.uuid4()}",
            status=TaskResultStatus.READY,
            enqueued_at=now,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=list(args),
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        retry = self.per_task.get(task.module_path, self.retry)
        params = DjangoTaskInput(
            task_path=task.module_path,
            args=result.args,
            kwargs=result.kwargs,
            takes_context=task.takes_context,
            backend=self.alias,
            queue_name=task.queue_name,
            priority=task.priority,
            tenant_id=tenant.tenant_id if tenant else "",
            schema_name=tenant.schema_name if tenant else "",
            enqueued_at=now.isoformat(),
            max_attempts=retry["max_attempts"],
            initial_interval_seconds=retry["initial_interval"],
            maximum_interval_seconds=retry["maximum_interval"],
            timeout_seconds=retry["timeout"],
            local=retry["local"],
            while_suspended=retry["while_suspended"],
        )
        # Refused here, before anything is written (a database error would spoil the
        # caller's transaction, a payload over Temporal's limit would fail the start later).
        check_json(
            dataclasses.asdict(params),
            f"{task.module_path}'s arguments",
            limit=self.max_argument_bytes,
        )
        # In the caller's transaction when there is one, as is (a savepoint would cost two
        # round trips); else in one of its own.
        with contextlib.nullcontext() if connection.in_atomic_block else transaction.atomic():
            TaskRecord.objects.create(
                id=result.id,
                task_path=task.module_path,
                backend=self.alias,
                queue_name=task.queue_name,
                priority=task.priority,
                run_after=task.run_after,
                args=result.args,
                kwargs=result.kwargs,
                enqueued_at=now,
            )
            enqueue_start(
                DjangoTaskWorkflow,
                params,
                workflow_id=result.id,
                route=self.route(task, tenant),
                run_after=task.run_after,
            )
            sender = type(self)
            transaction.on_commit(lambda: task_enqueued.send(sender, task_result=result))
        return result

    def route(self, task, tenant: TenantRef | None) -> Route:
        key = temporal_priority(task.priority)
        if tenant is not None and task.queue_name != "jobs":
            queue = deployment_tenant_route(tenant.tenant_id).task_queue
        else:
            queue = deployment_system_route().task_queue
        fairness = tenant.tenant_id if tenant is not None else None
        return Route(task_queue=queue, priority=Priority(priority_key=key, fairness_key=fairness))

    def get_result(self, result_id):
        """The task's result, read from its record. An unfinished record whose run may have
        ended without saying so (its start refused, the run terminated, cancelled or timed
        out) is checked against the outbox row and Temporal first, and the end recorded.
        ``TaskResultDoesNotExist`` for an id that is no task's."""
        if not isinstance(result_id, str) or not result_id.startswith(RESULT_PREFIX):
            raise TaskResultDoesNotExist(result_id)
        record = TaskRecord.objects.filter(pk=result_id).first()
        if record is None:
            return self._result(self._unrecorded(result_id))
        if record.status not in FINISHED:
            record = self._settle(record)
        return self._result(record)

    def _settle(self, record: TaskRecord) -> TaskRecord:
        row = _outbox_row(record.id)
        if row is not None and row.status == OutboxStatus.PENDING:
            return record
        if row is not None and row.status == OutboxStatus.FAILED:
            return run_ended(record.id, _refused(row), None)
        ended = async_to_sync(run_end)(record.id)
        if ended is None:  # still running, or gone from Temporal
            return record
        error, closed_at = ended
        if error is None:  # completed: the activity has recorded it
            return TaskRecord.objects.get(pk=record.id)
        return run_ended(record.id, error, closed_at)

    def _unrecorded(self, result_id: str) -> TaskRecord:
        """A task with no record (its outbox row written directly, not by ``enqueue()``),
        read from its outbox row or its run, as a record that is not saved."""
        row = _outbox_row(result_id)
        if row is not None and row.status == OutboxStatus.PENDING:
            state = RunState(status=TaskResultStatus.READY)
        elif row is not None and row.status == OutboxStatus.FAILED:
            state = RunState(status=TaskResultStatus.FAILED, errors=[_refused(row)])
        else:
            state = async_to_sync(read_run)(result_id, need_input=row is None)
            if state is None:
                raise TaskResultDoesNotExist(result_id)
        params = row.arguments if row is not None else state.input
        return TaskRecord(
            id=result_id,
            task_path=params["task_path"],
            backend=self.alias,
            queue_name=params["queue_name"],
            priority=params["priority"],
            args=params["args"],
            kwargs=params["kwargs"],
            run_after=row.run_after if row is not None else None,
            status=state.status,
            enqueued_at=_parse(params.get("enqueued_at")),
            started_at=state.started_at,
            last_attempted_at=state.last_attempted_at,
            finished_at=state.finished_at,
            worker_ids=state.worker_ids,
            errors=[dataclasses.asdict(e) for e in state.errors],
            return_value=state.value,
        )

    def _result(self, record: TaskRecord) -> TaskResult:
        task = _task_at(record.task_path, self.task_class, self.alias).using(
            priority=record.priority, queue_name=record.queue_name, run_after=record.run_after
        )
        result = TaskResult(
            task=task,
            id=record.id,
            status=TaskResultStatus(record.status),
            enqueued_at=record.enqueued_at,
            started_at=record.started_at,
            last_attempted_at=record.last_attempted_at,
            finished_at=record.finished_at,
            args=record.args,
            kwargs=record.kwargs,
            backend=self.alias,
            errors=errors_of(record),
            worker_ids=list(record.worker_ids),
        )
        if record.status == TaskResultStatus.SUCCESSFUL:
            object.__setattr__(result, "_return_value", record.return_value)
        return result


def _outbox_row(result_id: str) -> OutboxEntry | None:
    return (
        OutboxEntry.objects.filter(
            kind=OutboxKind.START, workflow_type=TASK_WORKFLOW, workflow_id=result_id
        )
        .order_by("-pk")
        .first()
    )


def _refused(row: OutboxEntry) -> TaskError:
    return TaskError(
        exception_class_path=f"{__name__}.TaskRunFailed",
        traceback=f"Temporal refused to start the run: {row.last_error}",
    )


def _unimportable(*args, **kwargs):
    raise TaskNotFound("this task's module path does not name a @task in this process")


def _task_at(path: str, task_class: type[Task], backend: str) -> Task:
    """The ``@task`` at ``path``; for a path that no longer names one here (its module
    removed or renamed since), a stand-in with the same ``module_path`` whose call raises
    ``TaskNotFound``, so that the result can still be read."""
    with contextlib.suppress(ImportError):
        found = import_string(path)
        if isinstance(found, Task):
            return found
    module, _, name = path.rpartition(".")
    func = types.FunctionType(_unimportable.__code__, _unimportable.__globals__, name)
    func.__module__, func.__qualname__ = module, name
    return task_class(func=func, backend=backend)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
