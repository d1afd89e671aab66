"""Recording what came of a pass's starts, each only while the row's lease is this relay's.

A row started is marked started with its run id; a row's own failure charges it an attempt
(retried after a growing delay, or failed for good); a row not tried, or met by
deployment-wide trouble, is released uncharged. Every statement applies only to rows whose
``lease_owner`` is still this relay: a row another relay took after the lease expired, or
that an admin's retry cleared, is left to whoever holds it now.
"""

import logging
from datetime import timedelta

from django.db import connection
from django.db.models import F
from django.db.models.functions import Now

from orchestration import metrics
from orchestration.models import OutboxEntry, OutboxKind, OutboxStatus
from orchestration.relay.errors import describe, refused_for_good

logger = logging.getLogger(__package__)  # "orchestration.relay": log lines keep one logger name


def row_retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** min(attempts, 9)))


class Recording:
    """The ``OutboxRelay``'s outcome statements, keyed by its ``relay_id``."""

    relay_id: str

    def _mine(self, *rows: OutboxEntry):
        """``rows``, as long as this relay still holds their lease (no other relay took it
        after expiry, and no admin retry cleared it)."""
        pks = [row.pk for row in rows]
        return OutboxEntry.objects.filter(pk__in=pks, lease_owner=self.relay_id)

    def _record_started(self, started: list[tuple[OutboxEntry, str]]) -> None:
        """Mark ``started`` (rows and their run ids, "" for a signal or a run started
        before) as started, in one statement, where this relay still holds the lease."""
        if not started:
            return
        table = connection.ops.quote_name(OutboxEntry._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS row SET status = %s, started_at = now(),
                    attempts = row.attempts + 1, last_error = '', run_id = given.run_id,
                    lease_owner = '', lease_expires_at = NULL
                FROM unnest(%s::bigint[], %s::text[]) AS given(id, run_id)
                WHERE row.id = given.id AND row.lease_owner = %s
                RETURNING row.id, EXTRACT(EPOCH FROM row.started_at - row.created_at)::float8
                """,  # noqa: S608 - the only name put in is the model's own table, quoted
                [
                    OutboxStatus.STARTED,
                    [row.pk for row, _ in started],
                    [run_id for _, run_id in started],
                    self.relay_id,
                ],
            )
            recorded = dict(cursor.fetchall())
        for row, _ in started:
            if row.pk not in recorded:
                # Whoever holds the row now will start it again and be told it already runs.
                logger.info("outbox row %s was started, but its lease was lost", row.pk)
            elif row.kind == OutboxKind.SIGNAL:
                logger.info("signalled %s to %s", row.workflow_type, row.workflow_id)
            else:
                logger.info(
                    "started %s %s on %s", row.workflow_type, row.workflow_id, row.task_queue
                )
                metrics.relay_started(recorded[row.pk])

    def _record_failure(self, row: OutboxEntry, exc: Exception) -> None:
        """Charge ``row`` an attempt: retried after a growing delay, or failed for good when
        Temporal can never accept it as it is."""
        error = describe(exc)
        if refused_for_good(row, exc):
            outcome = {"status": OutboxStatus.FAILED}
            metrics.relay_error("permanent")
            logger.error("outbox row %s refused by Temporal: %s", row.pk, error)
        else:
            outcome = {"available_at": Now() + row_retry_delay(row.attempts + 1)}
            metrics.relay_error("timeout" if isinstance(exc, TimeoutError) else "row")
            logger.warning("outbox row %s not started (%s); retried later", row.pk, error)
        self._mine(row).update(
            attempts=F("attempts") + 1,
            last_error=error,
            lease_owner="",
            lease_expires_at=None,
            **outcome,
        )

    def _release(self, rows: list[OutboxEntry], *, error: Exception | None = None) -> None:
        """Give up the lease of ``rows`` uncharged, due as before; ``error`` is noted on the
        first (the row that met it)."""
        if error is not None and rows:
            self._mine(rows[0]).update(last_error=describe(error))
        self._mine(*rows).update(lease_owner="", lease_expires_at=None)
