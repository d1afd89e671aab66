from django.db import models
from django.db.models.functions import Now


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    STARTED = "started", "Started"
    # A start the server refused for good (e.g. an invalid argument); kept for inspection.
    FAILED = "failed", "Failed"


class OutboxKind(models.TextChoices):
    START = "start", "Start a workflow"
    SIGNAL = "signal", "Signal a running workflow"


class IdReusePolicy(models.TextChoices):
    # Exactly once: a second start of the same id, even after the first run closed, is
    # refused (and counted as already started).
    REJECT_DUPLICATE = "reject_duplicate", "Reject duplicate"
    # A retry after a failed run may start a new run with the same id.
    ALLOW_DUPLICATE_FAILED_ONLY = "allow_duplicate_failed_only", "Allow after failure"


class OutboxEntry(models.Model):
    """A workflow start (or a signal to a workflow) recorded in the transaction of the change
    that caused it.

    The relay starts it on Temporal after commit; a rolled-back change leaves no row.
    Workflow ids are deterministic (``tenant-provision-<uuid>``) and never carry personal
    data: Temporal does not encode ids.

    Every time here that the relay compares is the database's clock (``now()``), never a
    process's: writers and relays on machines whose clocks disagree still agree on what is
    due and whose lease has expired.
    """

    kind = models.CharField(max_length=8, choices=OutboxKind.choices, default=OutboxKind.START)
    # For kind=start, the workflow type; for kind=signal, the signal's name.
    workflow_type = models.CharField(max_length=200)
    workflow_id = models.CharField(max_length=255, db_index=True)
    # The workflow's single input, as JSON (the dataclass's fields).
    arguments = models.JSONField(default=dict, blank=True)
    task_queue = models.CharField(max_length=255)
    priority_key = models.PositiveSmallIntegerField(null=True, blank=True)
    fairness_key = models.CharField(max_length=64, blank=True, default="")
    id_reuse_policy = models.CharField(
        max_length=32, choices=IdReusePolicy.choices, default=IdReusePolicy.REJECT_DUPLICATE
    )
    status = models.CharField(
        max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    run_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Due from this time on; set by the database when the row is written.
    available_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    # The workflow's first task waits until then (``start_workflow(start_delay=...)``,
    # computed by the relay with the database's clock); null: at once. The row itself is
    # started at once, so Temporal, not the outbox, holds the wait.
    run_after = models.DateTimeField(null=True, blank=True)
    # The relay that claimed the row and until when; a lease past its expiry (its relay
    # died or stalled) is free for any relay to take. Empty / null: not claimed.
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The W3C trace context (``traceparent``...) current when the row was written, so that the
    # relay's start continues the trace of the request that caused it; {} with tracing off.
    trace_context = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "outbox entries"
        indexes = [
            # The relay's claim query: pending rows due now, oldest first.
            models.Index(
                fields=["available_at", "id"],
                name="outbox_pending_due_idx",
                condition=models.Q(status="pending"),
            ),
            # The same, by fairness key: the claim takes each tenant's oldest rows in turn.
            models.Index(
                fields=["fairness_key", "available_at", "id"],
                name="outbox_pending_fair_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["status", "started_at"], name="outbox_status_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_type} {self.workflow_id} ({self.status})"


class TaskRecord(models.Model):
    """A ``django.tasks`` task's result, as ``TemporalTaskBackend.get_result`` reads it.

    Written by ``enqueue()`` in the caller's transaction (``READY``), then by the task's
    activity at the start and end of each attempt: the first attempt's start, the last
    one's, one error per failed attempt, one worker id per attempt. A run that ends without
    its activity saying so (terminated, timed out, its start refused) is recorded by the
    first ``get_result`` that finds it closed. Pruned by ``TaskResultsPruneWorkflow``
    (docs/tasks.md, "Retention").
    """

    id = models.CharField(max_length=64, primary_key=True)  # task-<uuid>: the workflow id
    task_path = models.CharField(max_length=500)
    backend = models.CharField(max_length=100, default="default")
    queue_name = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0)
    run_after = models.DateTimeField(null=True, blank=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, default="READY")  # django.tasks.TaskResultStatus
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # [{"exception_class_path": ..., "traceback": ...}], one per failed attempt.
    errors = models.JSONField(default=list, blank=True)
    worker_ids = models.JSONField(default=list, blank=True)  # one per attempt
    return_value = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The prune: finished results by age, unfinished ones by their last change.
            models.Index(fields=["finished_at"], name="taskrecord_finished_idx"),
            models.Index(
                fields=["updated_at"],
                name="taskrecord_open_idx",
                condition=models.Q(finished_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} {self.id} ({self.status})"


class TaskHold(models.Model):
    """A ``django.tasks`` run waiting for its suspended tenant (``orchestration.task_holds``).

    Written by the task's activity when it finds the tenant suspended, in the transaction
    that read that under the tenant's row lock; turned into a ``tenant_reactivated`` signal
    to the run (an outbox row) and deleted in the transaction that reactivates (or deletes)
    the tenant. So no run is left waiting for a reactivation that has already happened.
    """

    workflow_id = models.CharField(max_length=64, primary_key=True)  # the task's result id
    tenant_id = models.UUIDField(db_index=True)
    held_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workflow_id} held for {self.tenant_id}"
