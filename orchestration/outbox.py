"""Writing workflow starts to the outbox, inside the caller's transaction."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from orchestration.models import IdReusePolicy, OutboxEntry, OutboxKind, OutboxStatus
from orchestration.routing import Route

# PostgreSQL delivers a NOTIFY only when the transaction that sent it commits, and drops
# it on rollback: exactly "wake the relay after commit".
NOTIFY_CHANNEL = "orchestration_outbox"


def enqueue_start(
    *,
    workflow_type: str,
    workflow_id: str,
    arguments: dict,
    route: Route,
    namespace: str,
    id_reuse_policy: str = IdReusePolicy.REJECT_DUPLICATE,
) -> OutboxEntry:
    """Record that ``workflow_type`` must start with ``workflow_id`` once this transaction
    commits. Must be called inside the transaction of the change that causes the start."""
    _require_transaction("enqueue_start")
    entry = OutboxEntry.objects.create(
        workflow_type=workflow_type,
        workflow_id=workflow_id,
        arguments=arguments,
        namespace=namespace,
        task_queue=route.task_queue,
        priority_key=route.priority.priority_key,
        fairness_key=route.priority.fairness_key or "",
        id_reuse_policy=id_reuse_policy,
    )
    _notify()
    return entry


def enqueue_signal(*, workflow_id: str, signal: str, argument=None, namespace: str) -> OutboxEntry:
    """Record that ``signal`` must be sent to workflow ``workflow_id`` once this transaction
    commits. A workflow that has already closed cannot take it: the row is then marked
    failed with the reason (nothing is retried forever)."""
    _require_transaction("enqueue_signal")
    entry = OutboxEntry.objects.create(
        kind=OutboxKind.SIGNAL,
        workflow_type=signal,
        workflow_id=workflow_id,
        arguments=argument if argument is not None else {},
        namespace=namespace,
    )
    _notify()
    return entry


def _require_transaction(name: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(f"{name}() must run inside the transaction of the change it belongs to.")


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def prune_started(*, older_than: timedelta) -> int:
    """Delete started rows older than ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        deleted, _ = OutboxEntry.objects.filter(
            status=OutboxStatus.STARTED, started_at__lt=cutoff
        ).delete()
    return deleted
