"""The outbox relay: starts recorded workflows on Temporal, each exactly once.

Rows are leased, never held locked across a call to Temporal. A pass claims due rows in one
short statement that stamps them with this relay's id and a lease expiry (``claim``), starts
them with no transaction open (``start``), and records each outcome in a statement of its
own that applies only while the row's lease is still this relay's (``outcomes``). Any number
of relays can run side by side; a relay that dies leaves leases that expire after ``lease``
seconds, and another relay takes the rows.

Errors are sorted by whom they concern (``errors``): deployment-wide trouble charges no row
and the relay backs off; a row's own failure is charged to that row alone.

The rows of a pass are started concurrently and their outcomes recorded once the pass's
starts are done. A relay runs ``lanes`` passes at once, each in a loop of its own, woken by
``NOTIFY`` and by its admitted runs closing (``lanes``). Rows for one workflow id go one pass
after another, in the order they were written: a signal never overtakes the start it
follows.

Admission by tenant (``runs_per_tenant``, ``admission``): the relay keeps at most that many
of its runs open per fairness key; a tenant's further rows wait in the outbox until one of
its runs closes, while other tenants' rows are claimed at once. Started rows past the
retention are pruned, and a relay that stops releases its leases (``cleanup``).

``OutboxRelay`` (``passes``) puts these together.
"""

from orchestration.relay.passes import OutboxRelay

__all__ = ["OutboxRelay"]
