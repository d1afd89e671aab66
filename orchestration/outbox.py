"""Writing workflow starts to the outbox, inside the caller's transaction."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from orchestration.models import IdReusePolicy, OutboxEntry, OutboxStatus
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
    if not connection.in_atomic_block:
        raise RuntimeError(
            "enqueue_start() must run inside the transaction of the change it belongs to."
        )
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
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return entry


def prune_started(*, older_than: timedelta) -> int:
    """Delete started rows older than ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        deleted, _ = OutboxEntry.objects.filter(
            status=OutboxStatus.STARTED, started_at__lt=cutoff
        ).delete()
    return deleted
