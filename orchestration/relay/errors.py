"""Whom a failed start concerns: every row alike, the row alone for now, or the row for good.

Deployment-wide trouble (Temporal unreachable, ``RESOURCE_EXHAUSTED``, credentials or
permissions refused) charges no row: the pass stops, its remaining leases are released, and
the relay backs off and then retries them at once. Anything else is the row's: it is charged
an attempt and retried later with a growing delay (a start that times out included, so one
row that never answers cannot hold up the rows behind it), or failed for good when Temporal
refuses it as it is.
"""

from temporalio.service import RPCError, RPCStatusCode

from orchestration.models import OutboxEntry, OutboxKind

# The server can never accept these rows as they are; retrying would not help.
_PERMANENT = {RPCStatusCode.INVALID_ARGUMENT}
# Deployment-wide trouble (an outage, an overloaded or rate-limiting server, a rotated API
# key, a namespace permission): every row would fail alike, so the relay stops its pass and
# backs off; no row is charged for it. A timeout is not among them: it is one row's (that
# start may be the slow one), and the rows after it go on.
_DEPLOYMENT_WIDE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
}


class TemporalUnavailable(Exception):
    """A pass met deployment-wide trouble: the relay backs off before the next one."""


def deployment_wide(exc: Exception) -> bool:
    """Whether ``exc`` would meet every row alike (see ``_DEPLOYMENT_WIDE``)."""
    if isinstance(exc, RPCError):
        return exc.status in _DEPLOYMENT_WIDE
    # A timeout is a kind of OSError, but only this start's.
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)


def refused_for_good(row: OutboxEntry, exc: Exception) -> bool:
    """Whether Temporal can never accept ``row`` as it is, so that retrying it is useless."""
    status = exc.status if isinstance(exc, RPCError) else None
    # A signal to a workflow that has closed (or never ran) can never be delivered.
    gone = row.kind == OutboxKind.SIGNAL and status == RPCStatusCode.NOT_FOUND
    return status in _PERMANENT or gone


def describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
