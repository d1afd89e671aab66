"""The claim: which due rows a pass leases, in one short statement.

Rows are leased, never held locked across a call to Temporal. A pass claims up to
``batch_size`` due rows in one statement (``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
LOCKED) RETURNING``) that stamps them with the relay's id and a lease expiry. Due times and
leases are read and written with the database's clock (``now()``), so clock skew between
machines changes nothing.
"""

import threading
from datetime import timedelta

from django.db import connection

from orchestration.models import OutboxEntry, OutboxKind, OutboxStatus

# Small passes: a row written while a pass is under way waits for that pass to end. Two
# waves of concurrent starts keep a pass short (a few hundred ms under a backlog of
# thousands) without a claim per handful of rows.
BATCH_SIZE = 32
# A tenant whose due starts, with its open runs, number at most this many times
# runs_per_tenant has them all started at once: the cap holds back backlogs, not bursts.
BURST = 4


class Claiming:
    """The ``OutboxRelay``'s claim, shared by its lanes under ``_lock``."""

    relay_id: str
    lease: float
    batch_size: int
    runs_per_tenant: int
    _lock: threading.Lock
    _under_way: set[int]

    def claim(self) -> list[OutboxEntry]:
        """Lease up to ``batch_size`` due pending rows to this relay in one statement (its
        own short transaction): rows whose lease is live elsewhere, or that another relay is
        claiming at this instant, are skipped.

        Fair between fairness keys (tenants): each key's oldest row first, then each key's
        second, and so on, oldest first within a turn. A tenant that enqueued thousands of
        tasks in one transaction does not put another tenant's rows behind all of them.

        Rows for one workflow id go one at a time, in the order they were written: a row
        waits while an earlier one for the same id is pending (a signal is never sent before
        the start it follows, which it would not find). So no two rows of a batch share a
        workflow id, and a batch's rows can be started side by side.

        With ``runs_per_tenant`` (N), a key's starts are claimed only while it has fewer than N
        open runs through this relay, or while all of its due starts fit, with its open
        runs, in ``BURST`` x N: a backlog goes N at a time, a small burst at once. Signals,
        delayed starts (``run_after``) and rows with no key are not held back. The starts
        claimed count as open runs at once (``_settle`` drops those that did not become
        runs). The rows of this relay's passes under way are left out.
        """
        with self._lock:
            rows = self._claim(self._open_runs(), sorted(self._under_way))
            self._under_way.update(row.pk for row in rows)
            self._admit(rows)
        return rows

    def _claim(self, open_runs: dict[str, int], under_way: list[int]) -> list[OutboxEntry]:
        cap = self.runs_per_tenant
        table = connection.ops.quote_name(OutboxEntry._meta.db_table)
        due = """status = %s AND available_at <= now()
                 AND (lease_expires_at IS NULL OR lease_expires_at <= now()
                      OR lease_owner = %s)"""
        # One round trip, where the ORM would need a transaction and three; the only name
        # put into the text is the model's own table, quoted. The conditions are repeated
        # where the rows are locked, so that a row another relay claimed meanwhile (a newer
        # version, which the lock re-checks) is skipped. Window functions (sorts), not a
        # correlated subquery: right after a transaction wrote thousands of rows, before
        # autovacuum analysed them, the planner took the table for empty and ran a
        # NOT EXISTS as a nested loop over every pair (0.6 s for 2,000 rows).
        rows = OutboxEntry.objects.raw(
            f"""
            UPDATE {table} SET lease_owner = %s,
                               lease_expires_at = now() + make_interval(secs => %s)
            WHERE id IN (
                SELECT id FROM {table}
                WHERE {due} AND id = ANY(ARRAY(
                    SELECT id FROM (
                        SELECT id, available_at, fairness_key, counted,
                               row_number() OVER by_key AS turn,
                               count(*) FILTER (WHERE counted) OVER by_key AS nth_start,
                               count(*) FILTER (WHERE counted)
                                   OVER (PARTITION BY fairness_key) AS starts_due
                        FROM (
                            SELECT id, available_at, fairness_key, status, lease_expires_at,
                                   lease_owner,
                                   min(id) OVER (PARTITION BY workflow_id) AS first_id,
                                   kind = %s AND fairness_key <> ''
                                       AND COALESCE(run_after <= now(), true) AS counted
                            FROM {table} WHERE status = %s
                        ) AS pending
                        WHERE id = first_id AND {due} AND NOT id = ANY(%s::bigint[])
                        WINDOW by_key AS (PARTITION BY fairness_key ORDER BY available_at, id)
                    ) AS candidates
                    LEFT JOIN unnest(%s::text[], %s::int[]) AS admitted(key, open_runs)
                           ON admitted.key = candidates.fairness_key
                    WHERE %s = 0 OR NOT candidates.counted
                          OR COALESCE(admitted.open_runs, 0) + candidates.nth_start <= %s
                          OR COALESCE(admitted.open_runs, 0) + candidates.starts_due <= %s
                    ORDER BY turn, available_at, id
                    LIMIT %s
                ))
                FOR UPDATE SKIP LOCKED
            )
            RETURNING *, GREATEST(EXTRACT(EPOCH FROM run_after - now()), 0)::float8
                         AS start_delay_seconds,
                      EXISTS (SELECT 1 FROM {table} AS later
                              WHERE later.workflow_id = {table}.workflow_id
                                AND later.status = %s AND later.id > {table}.id)
                         AS has_follower
            """,  # noqa: S608
            [
                self.relay_id,
                self.lease,
                OutboxStatus.PENDING,
                self.relay_id,
                OutboxKind.START,
                OutboxStatus.PENDING,
                OutboxStatus.PENDING,
                self.relay_id,
                under_way,
                list(open_runs),
                list(open_runs.values()),
                cap,
                cap,
                cap * BURST,
                self.batch_size,
                OutboxStatus.PENDING,
            ],
        )
        return fair_order(rows)


def fair_order(rows) -> list[OutboxEntry]:
    """``rows`` in the order ``claim`` chose them: by turn of their fairness key, then
    oldest first."""
    turns: dict[str, int] = {}
    keyed = []
    for row in sorted(rows, key=lambda row: (row.available_at, row.pk)):
        turns[row.fairness_key] = turns.get(row.fairness_key, 0) + 1
        keyed.append((turns[row.fairness_key], row.available_at, row.pk, row))
    return [row for *_, row in sorted(keyed, key=lambda item: item[:3])]


def start_delay(row: OutboxEntry) -> timedelta | None:
    """How long the run waits before its first task: ``run_after`` less the claim's
    ``now()`` (the database's clock), none when that is past or unset."""
    seconds = getattr(row, "start_delay_seconds", None)
    return timedelta(seconds=seconds) if seconds else None
