"""The record of a ``django.tasks`` task's result (``TaskRecord``): written at ``enqueue()``,
at the start and end of each attempt, and when a run ends another way; read by
``TemporalTaskBackend.get_result``; pruned past its retention.

Every write here is one transaction of its own, safe to repeat: an attempt recorded twice
(a retried activity) adds one more attempt, never loses one.
"""

import json
from datetime import datetime, timedelta
from traceback import format_exception
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.tasks import TaskResultStatus
from django.tasks.base import TaskError
from django.utils import timezone

from orchestration.models import TaskRecord

FINISHED = (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
# Temporal's default blob limit (``limit.blobSize.error``): a payload over it is refused.
MAX_ARGUMENT_BYTES = 2 * 1024 * 1024


def check_json(value: Any, what: str, *, limit: int) -> None:
    """``ValueError`` for what JSON, PostgreSQL's ``jsonb`` or Temporal cannot hold: NaN and
    infinities (as ``json.dumps(allow_nan=False)``), the NUL character, and more than
    ``limit`` bytes as Temporal's JSON converter writes it (its blob limit)."""
    try:
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if _has_nul(value):
        raise ValueError(f"{what}: the NUL character (\\x00) cannot be stored")
    if len(encoded) > limit:
        raise ValueError(
            f"{what} take {len(encoded)} bytes as JSON, over the backend's "
            f"MAX_ARGUMENT_BYTES ({limit}): pass ids, not data."
        )


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def error_of(exc: BaseException) -> TaskError:
    """``exc`` as Django records a task's error: its class path and its traceback."""
    kind = type(exc)
    return TaskError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback="".join(format_exception(exc)).replace("\x00", "\\x00"),
    )


def errors_of(record: TaskRecord) -> list[TaskError]:
    return [TaskError(**error) for error in record.errors]


def _as_dict(error: TaskError) -> dict:
    return {"exception_class_path": error.exception_class_path, "traceback": error.traceback}


def attempt_started(result_id: str, params: dict, worker: str) -> TaskRecord:
    """Record an attempt's start: ``RUNNING``, the first attempt's start kept, this worker
    added. A task enqueued with no record (its outbox row written directly) gets one here,
    from its run's input."""
    now = timezone.now()
    with transaction.atomic():
        record = TaskRecord.objects.select_for_update().filter(pk=result_id).first()
        if record is None:
            record = TaskRecord(
                id=result_id,
                task_path=params["task_path"],
                args=params["args"],
                kwargs=params["kwargs"],
                backend=params.get("backend") or "default",
                queue_name=params.get("queue_name") or "default",
                priority=params.get("priority") or 0,
                enqueued_at=_parse(params.get("enqueued_at")) or now,
            )
        record.status = TaskResultStatus.RUNNING
        record.started_at = record.started_at or now
        record.last_attempted_at = now
        record.worker_ids = [*record.worker_ids, worker]
        record.save()
    return record


def attempt_failed(result_id: str, error: TaskError, *, final: bool) -> TaskRecord:
    """Record a failed attempt's error: ``FAILED`` when no attempt follows, else ``READY``
    (Django's "ready to be executed again")."""
    with transaction.atomic():
        record = TaskRecord.objects.select_for_update().get(pk=result_id)
        record.errors = [*record.errors, _as_dict(error)]
        record.status = TaskResultStatus.FAILED if final else TaskResultStatus.READY
        record.finished_at = timezone.now() if final else None
        record.save()
    return record


def attempt_succeeded(result_id: str, value: Any) -> TaskRecord:
    record = TaskRecord.objects.get(pk=result_id)
    record.status = TaskResultStatus.SUCCESSFUL
    record.return_value = value
    record.finished_at = timezone.now()
    record.save(update_fields=["status", "return_value", "finished_at", "updated_at"])
    return record


def run_ended(result_id: str, error: TaskError, finished_at: datetime | None) -> TaskRecord:
    """Record a run that ended without its activity recording it (terminated, cancelled,
    timed out, its start refused): ``FAILED`` with ``error`` added. A result already
    finished is left as it is."""
    with transaction.atomic():
        record = TaskRecord.objects.select_for_update().get(pk=result_id)
        if record.status not in FINISHED:
            record.errors = [*record.errors, _as_dict(error)]
            record.status = TaskResultStatus.FAILED
            record.finished_at = finished_at or timezone.now()
            record.save()
    return record


def delete_stale(*, backend: str, retention: timedelta, batch_size: int) -> int:
    """Delete up to ``batch_size`` of ``backend``'s results that finished more than
    ``retention`` ago, or that have not changed for that long and wait for no later
    ``run_after``; returns how many. Idempotent."""
    cutoff = timezone.now() - retention
    stale = TaskRecord.objects.filter(backend=backend).filter(
        Q(finished_at__lt=cutoff)
        | Q(finished_at=None, updated_at__lt=cutoff) & (Q(run_after=None) | Q(run_after__lt=cutoff))
    )
    ids = list(stale.values_list("pk", flat=True)[:batch_size])
    return TaskRecord.objects.filter(pk__in=ids).delete()[0]


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
