"""The activity behind ``DjangoTaskWorkflow``: import a ``django.tasks`` task by its module
path and call it, in its tenant's schema when it has one.

A task of a suspended tenant does not run: its run is held (``orchestration.task_holds``)
and the attempt fails with ``TenantSuspended``, which the workflow answers by waiting for
the tenant's reactivation; tasks whose options say ``while_suspended`` (the owner's data
export) run all the same.

No registry: any ``@task`` the worker can import runs. A path that does not import, or that
names something other than a ``Task``, fails the run at once (``TaskNotFound``, never
retried). A task that raises (``SystemExit`` included) fails this attempt with an
``ApplicationError`` whose type is the exception's class path and whose details are
``[class path, traceback, attempt, worker]``; the run's retry policy (the backend's options)
decides whether another attempt follows.

Each attempt is recorded on the task's ``TaskRecord`` (``orchestration.task_results``), and
Django's ``task_started`` / ``task_finished`` signals are sent here, on the worker, around
it, with the ``TaskResult`` as recorded.
"""

import os
import socket
from datetime import timedelta

from django.db import close_old_connections
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils.json import normalize_json
from django.utils.module_loading import import_string
from django_tenants.utils import tenant_context
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.logs import log_context
from orchestration import task_results
from orchestration.activities import django_activity
from orchestration.errors import INVALID_INPUT, INVALID_STATE, TASK_NOT_FOUND, TENANT_SUSPENDED
from orchestration.models import TaskRecord
from orchestration.task_holds import RELEASE_SIGNAL as RELEASE_SIGNAL  # for the workflow
from orchestration.task_holds import hold_if_suspended
from tenants.databases import on_database
from tenants.models import Tenant, TenantStatus
from tenants.schemas.create import schema_exists

# The SDK's default worker identity (pid@host): which process ran an attempt.
WORKER = f"{os.getpid()}@{socket.gethostname()}"

# Failures no retry can fix: the task is not there, or its tenant is not; or its tenant is
# suspended (the workflow waits for the reactivation instead).
NON_RETRYABLE = [TASK_NOT_FOUND, INVALID_INPUT, INVALID_STATE, TENANT_SUSPENDED]


def load_task(path: str) -> Task:
    """The ``Task`` at ``path``, or a non-retryable ``TaskNotFound`` saying why not."""
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ApplicationError(
            f"task {path!r} cannot be imported on this worker: {exc}",
            type=TASK_NOT_FOUND,
            non_retryable=True,
        ) from exc
    if not isinstance(found, Task):
        raise ApplicationError(
            f"{path!r} is a {type(found).__name__}, not a @task (django.tasks.task).",
            type=TASK_NOT_FOUND,
            non_retryable=True,
        )
    return found


def _check_tenant(tenant_id: str, schema_name: str) -> Tenant:
    """The task's tenant, when its tasks may run in its schema."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or tenant.schema_name != schema_name:
        raise ApplicationError(
            f"tenant {tenant_id} does not exist", type=INVALID_STATE, non_retryable=True
        )
    if tenant.status in (TenantStatus.DELETING, TenantStatus.DELETED):
        raise ApplicationError(
            f"tenant {tenant_id} is {tenant.status}: its tasks no longer run",
            type=INVALID_STATE,
            non_retryable=True,
        )
    with on_database(tenant.database):
        exists = schema_exists(schema_name)
    if not exists:
        raise ApplicationError(
            f"tenant {tenant_id} has no schema (status {tenant.status})",
            type=INVALID_STATE,
            non_retryable=True,
        )
    return tenant


def _final(info: activity.Info, exc: BaseException) -> bool:
    """No attempt follows this failed one: a non-retryable error, or the policy's last."""
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return True
    policy = info.retry_policy
    return bool(policy and policy.maximum_attempts) and info.attempt >= policy.maximum_attempts


# Not ``django_activity``, which logs the first argument as the tenant: here the tenant is
# in the params (or absent). The connection hygiene and the log context are the same.
@activity.defn
def django_task_run(params: dict) -> dict:
    """Run one attempt of the task, recorded on its ``TaskRecord`` (its start, then its
    error or its return value); returns ``{"value", "attempt", "worker", "started_at"}``.
    Runs in the tenant's schema (``tenant_context``, which never leaks to the next activity
    on this thread) when ``tenant_id`` is set."""
    info = activity.info()
    tenant_id, schema = params.get("tenant_id") or "", params.get("schema_name") or ""
    with log_context(
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        activity=info.activity_type,
        tenant_id=tenant_id or None,
    ):
        close_old_connections()
        try:
            if (
                tenant_id
                and not params.get("while_suspended")
                and hold_if_suspended(info.workflow_id, tenant_id)
            ):
                # Not an attempt: the record stays READY, and the run waits for the tenant's
                # reactivation instead of spending its retries.
                raise ApplicationError(
                    f"tenant {tenant_id} is suspended or scheduled for deletion: the task "
                    "waits for its return",
                    type=TENANT_SUSPENDED,
                    non_retryable=True,
                )
            record = task_results.attempt_started(info.workflow_id, params, WORKER)
            try:
                task = load_task(params["task_path"])
                tenant = _check_tenant(tenant_id, schema) if tenant_id else None
            except ApplicationError as exc:
                kind = "TaskNotFound" if exc.type == TASK_NOT_FOUND else "TaskRunFailed"
                error = TaskError(
                    exception_class_path=f"orchestration.tasks.{kind}", traceback=exc.message
                )
                task_results.attempt_failed(info.workflow_id, error, final=True)
                raise
            if tenant is not None:
                with tenant_context(tenant):
                    return _call(task, params, info, record)
            return _call(task, params, info, record)
        finally:
            close_old_connections()


def _as_result(task: Task, record: TaskRecord, status: TaskResultStatus) -> TaskResult:
    return TaskResult(
        task=task,
        id=record.id,
        status=status,
        enqueued_at=record.enqueued_at,
        started_at=record.started_at,
        last_attempted_at=record.last_attempted_at,
        finished_at=record.finished_at,
        args=record.args,
        kwargs=record.kwargs,
        backend=record.backend,
        errors=task_results.errors_of(record),
        worker_ids=list(record.worker_ids),
    )


def _call(task: Task, params: dict, info: activity.Info, record: TaskRecord) -> dict:
    """Call the task and record how the attempt ended. Django's ``task_started`` and
    ``task_finished`` are sent around it with the result as recorded: every error so far,
    one worker id per attempt. A failed attempt that another follows is ``READY`` in
    ``task_finished`` (Django's "ready to be executed again", logged below ERROR); only the
    last is ``FAILED``."""
    result = _as_result(task, record, TaskResultStatus.RUNNING)
    sender = type(task.get_backend())  # as Django's own backends send them
    task_started.send(sender=sender, task_result=result)
    try:
        if params.get("takes_context"):
            value = task.call(TaskContext(task_result=result), *result.args, **result.kwargs)
        else:
            value = task.call(*result.args, **result.kwargs)
        value = normalize_json(value)
        limit = getattr(task.get_backend(), "max_argument_bytes", task_results.MAX_ARGUMENT_BYTES)
        task_results.check_json(value, f"{task.module_path}'s return value", limit=limit)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too, as Django's immediate backend
        error = task_results.error_of(exc)
        failure = ApplicationError(
            str(exc) or error.exception_class_path,
            error.exception_class_path,
            error.traceback,
            info.attempt,
            WORKER,
            type=error.exception_class_path,
        )
        final = _final(info, failure)
        record = task_results.attempt_failed(info.workflow_id, error, final=final)
        status = TaskResultStatus.FAILED if final else TaskResultStatus.READY
        task_finished.send(sender=sender, task_result=_as_result(task, record, status))
        raise failure from exc
    record = task_results.attempt_succeeded(info.workflow_id, value)
    task_finished.send(
        sender=sender, task_result=_as_result(task, record, TaskResultStatus.SUCCESSFUL)
    )
    return {
        "value": value,
        "attempt": info.attempt,
        "worker": WORKER,
        "started_at": record.last_attempted_at.isoformat(),
    }


@django_activity
def task_results_delete_stale(backend: str, retention_seconds: int, batch_size: int) -> int:
    """Deletes one batch of ``backend``'s stale results; the workflow calls it until it
    deletes fewer than ``batch_size``. Idempotent."""
    return task_results.delete_stale(
        backend=backend, retention=timedelta(seconds=retention_seconds), batch_size=batch_size
    )


ACTIVITIES = [django_task_run]
PRUNE = [task_results_delete_stale]
