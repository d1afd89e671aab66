"""One ``django.tasks`` task, run by its module path: the workflow behind
``orchestration.tasks.TemporalTaskBackend``.

The run is one activity (``django_task_run``) that imports the task and calls it, in the
tenant's schema when it was enqueued for a tenant; a local activity, in the run's first
workflow task, for a task whose options say ``local`` (short tasks). Retries are the
activity's: the policy is carried in the input (the backend's options, per task), so each
task keeps the policy it was enqueued with. The activity inherits the run's priority and
fairness key, so a tenant's backlog of tasks shares the workers fairly with other tenants'
tasks, not only its runs.

A task of a suspended tenant is not run: the activity fails with ``TenantSuspended`` at
once, and the run waits (a durable wait, on no worker, spending none of the task's retries)
for the ``tenant_reactivated`` signal that the tenant's reactivation sends through the
outbox, then runs the task again. It also looks again every ``HOLD_RECHECK`` on its own, so
that even a lost signal delays the task, never strands it.

The run's result is the activity's: ``{"value", "attempt", "worker", "started_at"}``; a task
that raised on its last attempt fails the run with an ``ApplicationError`` whose type is the
exception's class path and whose details carry the traceback (see the activity).
"""

import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import tasks as steps
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class DjangoTaskInput(WorkflowInput):
    # ``module.function`` of the ``@task`` (required: the default fails validation).
    task_path: str = ""
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    takes_context: bool = False
    backend: str = "default"
    queue_name: str = "default"
    priority: int = 0
    # The tenant it runs for ("" = none: the public schema) and that tenant's schema.
    tenant_id: str = ""
    schema_name: str = ""
    # ISO 8601, when ``enqueue()`` was called (shown as ``TaskResult.enqueued_at``).
    enqueued_at: str = ""
    # The activity's retry policy and timeout (the backend's options for this task).
    max_attempts: int = 3
    initial_interval_seconds: int = 1
    maximum_interval_seconds: int = 60
    timeout_seconds: int = 300
    # Run the task as a local activity, in the workflow task (the backend's ``local``
    # option): one server dispatch for the whole run.
    local: bool = False
    # Run it even while its tenant is suspended (the backend's ``while_suspended`` option).
    while_suspended: bool = False

    def validate(self) -> None:
        if not isinstance(self.task_path, str) or "." not in self.task_path:
            raise invalid("task_path", f"must be a dotted path, got {self.task_path!r}")
        if not isinstance(self.args, list):
            raise invalid("args", "must be a list")
        if not isinstance(self.kwargs, dict):
            raise invalid("kwargs", "must be an object")
        if bool(self.tenant_id) != bool(self.schema_name):
            raise invalid("schema_name", "goes with tenant_id (both or neither)")
        for name in ("local", "while_suspended"):
            if not isinstance(getattr(self, name), bool):
                raise invalid(name, f"must be true or false, got {getattr(self, name)!r}")
        for name in (
            "max_attempts",
            "initial_interval_seconds",
            "maximum_interval_seconds",
            "timeout_seconds",
        ):
            require_positive(name, getattr(self, name))


# A held run looks at its tenant again this often even without that signal.
HOLD_RECHECK = timedelta(hours=1)


# Not sandboxed: the run holds no state and makes one call, deterministic by construction,
# and the sandbox re-imports the workflow's modules for every new run. With thousands of
# small tasks that import was the worker's main cost: bench/tasks.py saw workflow tasks
# exceed 5 s and time out under a 2,000-task backlog on 2 cores.
# Pinned: one task's run (its retries included) finishes on the build that started it.
@workflow.defn(
    sandboxed=False,
    versioning_behavior=when_versioned(VersioningBehavior.PINNED, workflow="DjangoTaskWorkflow"),
)
class DjangoTaskWorkflow:
    def __init__(self) -> None:
        self._released = False

    @workflow.signal(name=steps.RELEASE_SIGNAL)
    def tenant_reactivated(self) -> None:
        self._released = True

    @workflow.run
    async def run(self, params: DjangoTaskInput | dict) -> dict:
        params = DjangoTaskInput.parse(params)
        call = {
            "args": [
                {
                    "task_path": params.task_path,
                    "args": params.args,
                    "kwargs": params.kwargs,
                    "takes_context": params.takes_context,
                    "backend": params.backend,
                    "queue_name": params.queue_name,
                    "priority": params.priority,
                    "tenant_id": params.tenant_id,
                    "schema_name": params.schema_name,
                    "enqueued_at": params.enqueued_at,
                    "while_suspended": params.while_suspended,
                }
            ],
            "start_to_close_timeout": timedelta(seconds=params.timeout_seconds),
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(seconds=params.initial_interval_seconds),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=params.maximum_interval_seconds),
                maximum_attempts=params.max_attempts,
                non_retryable_error_types=steps.NON_RETRYABLE,
            ),
        }
        while True:
            try:
                return await self._attempt(params.local, call)
            except (ActivityError, ApplicationError) as exc:
                if not _held(exc):
                    raise
            # Held: its tenant is suspended. Wait for the reactivation, then try again.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._released, timeout=HOLD_RECHECK)
            self._released = False

    async def _attempt(self, local: bool, call: dict) -> dict:
        if local:
            return await workflow.execute_local_activity(steps.django_task_run, **call)
        return await workflow.execute_activity(
            steps.django_task_run, **call, priority=workflow.info().priority
        )


def _held(exc: ActivityError | ApplicationError) -> bool:
    # A task-queue activity's error comes wrapped in an ActivityError; a local activity's
    # comes as it was raised.
    error = exc.cause if isinstance(exc, ActivityError) else exc
    return isinstance(error, ApplicationError) and error.type == steps.TENANT_SUSPENDED
