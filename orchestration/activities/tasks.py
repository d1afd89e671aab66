"""The activity behind ``DjangoTaskWorkflow``: import a ``django.tasks`` task by its module
path and call it, in its tenant's schema when it has one.

No registry: any ``@task`` the worker can import runs. A path that does not import, or that
names something other than a ``Task``, fails the run at once (``TaskNotFound``, never
retried). A task that raises fails this attempt with an ``ApplicationError`` whose type is
the exception's class path and whose details are ``[class path, traceback, attempt,
worker]``; the run's retry
policy (the backend's options) decides whether another attempt follows.

Django's ``task_started`` / ``task_finished`` signals are sent here, on the worker, around
each attempt, with a ``TaskResult`` that describes it.
"""

import os
import socket
from traceback import format_exception

from django.db import close_old_connections
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.json import normalize_json
from django.utils.module_loading import import_string
from django_tenants.utils import schema_context
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.logs import log_context
from orchestration.errors import INVALID_INPUT, INVALID_STATE, TASK_NOT_FOUND
from tenants.models import Tenant, TenantStatus
from tenants.schemas.create import schema_exists

# The SDK's default worker identity (pid@host): which process ran an attempt.
WORKER = f"{os.getpid()}@{socket.gethostname()}"

# Failures no retry can fix: the task is not there, or its tenant is not.
NON_RETRYABLE = [TASK_NOT_FOUND, INVALID_INPUT, INVALID_STATE]


def load_task(path: str) -> Task:
    """The ``Task`` at ``path``, or a non-retryable ``TaskNotFound`` saying why not."""
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ApplicationError(
            f"task {path!r} cannot be imported on this worker: {exc}",
            type=TASK_NOT_FOUND, non_retryable=True,
        ) from exc  # fmt: skip
    if not isinstance(found, Task):
        raise ApplicationError(
            f"{path!r} is a {type(found).__name__}, not a @task (django.tasks.task).",
            type=TASK_NOT_FOUND, non_retryable=True,
        )  # fmt: skip
    return found


def _check_tenant(tenant_id: str, schema_name: str) -> None:
    tenant = Tenant.objects.filter(pk=tenant_id).values("status", "schema_name").first()
    if tenant is None or tenant["schema_name"] != schema_name:
        raise ApplicationError(
            f"tenant {tenant_id} does not exist", type=INVALID_STATE, non_retryable=True
        )
    if tenant["status"] in (TenantStatus.DELETING, TenantStatus.DELETED):
        raise ApplicationError(
            f"tenant {tenant_id} is {tenant['status']}: its tasks no longer run",
            type=INVALID_STATE, non_retryable=True,
        )  # fmt: skip
    if not schema_exists(schema_name):
        raise ApplicationError(
            f"tenant {tenant_id} has no schema (status {tenant['status']})",
            type=INVALID_STATE, non_retryable=True,
        )  # fmt: skip


def _error_path(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


# Not ``django_activity``, which logs the first argument as the tenant: here the tenant is
# in the params (or absent). The connection hygiene and the log context are the same.
@activity.defn
def django_task_run(params: dict) -> dict:
    """Run one attempt of the task; returns ``{"value", "attempt", "worker", "started_at"}``.
    Runs in the tenant's schema (``schema_context``, which never leaks to the next activity
    on this thread) when ``tenant_id`` is set."""
    info = activity.info()
    tenant_id, schema = params.get("tenant_id") or "", params.get("schema_name") or ""
    with log_context(
        workflow_id=info.workflow_id, run_id=info.workflow_run_id,
        activity=info.activity_type, tenant_id=tenant_id or None,
    ):  # fmt: skip
        close_old_connections()
        try:
            task = load_task(params["task_path"])
            if tenant_id:
                _check_tenant(tenant_id, schema)
                with schema_context(schema):
                    return _call(task, params, info)
            return _call(task, params, info)
        finally:
            close_old_connections()


def _call(task: Task, params: dict, info: activity.Info) -> dict:
    started = timezone.now()
    # Temporal keeps the worker of the latest attempt only; Django counts attempts as
    # len(worker_ids), so the list holds that worker once per attempt.
    result = TaskResult(
        task=task, id=info.workflow_id, status=TaskResultStatus.RUNNING,
        enqueued_at=parse_datetime(params.get("enqueued_at") or "") or None,
        started_at=started, last_attempted_at=started, finished_at=None,
        args=params["args"], kwargs=params["kwargs"], backend=params.get("backend", "default"),
        errors=[], worker_ids=[WORKER] * info.attempt,
    )  # fmt: skip
    sender = type(task.get_backend())  # as Django's own backends send them
    task_started.send(sender=sender, task_result=result)
    try:
        if params.get("takes_context"):
            value = task.call(TaskContext(task_result=result), *result.args, **result.kwargs)
        else:
            value = task.call(*result.args, **result.kwargs)
        value = normalize_json(value)
    except Exception as exc:
        path, trace = _error_path(exc), "".join(format_exception(exc))
        object.__setattr__(result, "status", TaskResultStatus.FAILED)
        object.__setattr__(result, "finished_at", timezone.now())
        task_finished.send(sender=sender, task_result=result)
        raise ApplicationError(
            str(exc) or path, path, trace, info.attempt, WORKER, type=path
        ) from exc
    object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "finished_at", timezone.now())
    task_finished.send(sender=sender, task_result=result)
    return {
        "value": value,
        "attempt": info.attempt,
        "worker": WORKER,
        "started_at": started.isoformat(),
    }


ACTIVITIES = [django_task_run]
