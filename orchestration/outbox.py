"""Writing workflow starts to the outbox, inside the caller's transaction."""

import dataclasses
import typing
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models.functions import Now

from core import tracing
from orchestration.models import IdReusePolicy, OutboxEntry, OutboxKind, OutboxStatus
from orchestration.routing import Route

# PostgreSQL delivers a NOTIFY only when the transaction that sent it commits, and drops
# it on rollback: exactly "wake the relay after commit". Sent by a trigger on the outbox
# table (migration 0007) for every INSERT, at no extra round trip for the writer.
NOTIFY_CHANNEL = "orchestration_outbox"


def workflow_type(workflow: type) -> str:
    """The type name a ``@workflow.defn`` class is registered under on the workers."""
    definition = getattr(workflow, "__temporal_workflow_definition", None)
    if definition is None:
        raise TypeError(f"{workflow!r} is not a @workflow.defn class.")
    return definition.name


def workflow_input_type(workflow: type) -> type:
    """The dataclass a workflow's ``run`` takes: its one parameter after ``self``, annotated
    ``XInput | dict`` (see ``orchestration/workflows/_steps/inputs.py``)."""
    hints = typing.get_type_hints(workflow.run)
    hints.pop("return", None)
    (annotation,) = hints.values()
    members = typing.get_args(annotation) or (annotation,)
    (input_type,) = [m for m in members if dataclasses.is_dataclass(m)]
    return input_type


def enqueue_start(
    workflow: type,
    params,
    *,
    workflow_id: str,
    route: Route,
    id_reuse_policy: str = IdReusePolicy.REJECT_DUPLICATE,
    run_after: datetime | None = None,
    hold: timedelta | None = None,
) -> OutboxEntry:
    """Record that ``workflow`` must start with input ``params`` and ``workflow_id`` once
    this transaction commits. Must be called inside the transaction of the change that
    causes the start.

    The start contract is checked here, before anything is written: ``params`` must be an
    instance of the input dataclass ``workflow.run`` takes, and valid (``validate()``, which
    raises ``ApplicationError`` naming the field); the type name comes from the class. A
    renamed field fails where the input is built, not on a worker later.

    With tracing on, the row keeps the current trace context: the relay's start continues
    the trace of the request (or command) that wrote it.

    ``run_after``: the run is started after commit like any other, and waits on Temporal
    until then before its first task.

    ``hold``: the relay takes the row only this long after it was written (its start, and
    the run's first workflow task, then come later too): work that must not compete with
    what is running now, such as the pool refill a claim asks for.
    """
    _require_transaction("enqueue_start")
    expected = workflow_input_type(workflow)
    if not isinstance(params, expected):
        raise TypeError(
            f"{workflow.__name__} takes a {expected.__name__}, got {type(params).__name__}."
        )
    params.validate()
    entry = OutboxEntry.objects.create(
        workflow_type=workflow_type(workflow),
        workflow_id=workflow_id,
        arguments=dataclasses.asdict(params),
        task_queue=route.task_queue,
        priority_key=route.priority.priority_key,
        fairness_key=route.priority.fairness_key or "",
        id_reuse_policy=id_reuse_policy,
        trace_context=tracing.carrier(),
        run_after=run_after,
        **({"available_at": Now() + hold} if hold else {}),
    )
    return entry


def enqueue_signal(*, workflow_id: str, signal: str, argument=None) -> OutboxEntry:
    """Record that ``signal`` must be sent to workflow ``workflow_id`` once this transaction
    commits. A workflow that has already closed cannot take it: the row is then marked
    failed with the reason (nothing is retried forever)."""
    _require_transaction("enqueue_signal")
    entry = OutboxEntry.objects.create(
        kind=OutboxKind.SIGNAL,
        workflow_type=signal,
        workflow_id=workflow_id,
        arguments=argument if argument is not None else {},
        trace_context=tracing.carrier(),
    )
    return entry


def _require_transaction(name: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(f"{name}() must run inside the transaction of the change it belongs to.")


def prune_started(*, older_than: timedelta) -> int:
    """Delete started rows older than ``older_than`` (by the database's clock, which
    stamped ``started_at``); returns how many."""
    with transaction.atomic():
        deleted, _ = OutboxEntry.objects.filter(
            status=OutboxStatus.STARTED, started_at__lt=Now() - older_than
        ).delete()
    return deleted
