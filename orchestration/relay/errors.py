"""Whom a failed start concerns: every row alike, the row alone for now, or the row for good.

Deployment-wide trouble (Temporal unreachable, a rate limit, credentials or permissions
refused) charges no row: the pass stops, its remaining leases are released, and the relay
backs off and then retries them at once. Anything else is the row's: it is charged an
attempt and retried later with a growing delay (a start that times out included, so one row
that never answers cannot hold up the rows behind it), or failed for good when Temporal
refuses it as it is: an invalid argument, a payload over the server's blob limit, or a
request over gRPC's message limit.
"""

from temporalio.service import RPCError, RPCStatusCode

from orchestration.models import OutboxEntry, OutboxKind

# The server can never accept these rows as they are; retrying would not help. A payload
# over the blob limit (2 MB by default) is among them ("Blob data size exceeds limit.").
_PERMANENT = {RPCStatusCode.INVALID_ARGUMENT}
# Deployment-wide trouble (an outage, an overloaded or rate-limiting server, a rotated API
# key, a namespace permission): every row would fail alike, so the relay stops its pass and
# backs off; no row is charged for it. A timeout is not among them: it is one row's (that
# start may be the slow one), and the rows after it go on; nor is a request too large for
# the server (``too_large``), although its code is RESOURCE_EXHAUSTED.
_DEPLOYMENT_WIDE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
}


class TemporalUnavailable(Exception):
    """A pass met deployment-wide trouble: the relay backs off before the next one."""


def too_large(exc: Exception) -> bool:
    """Whether the server would not read ``exc``'s request for its size. A request over
    gRPC's message limit (4 MiB by default) comes back as ``RESOURCE_EXHAUSTED``, the code
    of a rate limit, with "received message … larger than max" as its message: only that
    row is too large, every other one goes through."""
    return (
        isinstance(exc, RPCError)
        and exc.status == RPCStatusCode.RESOURCE_EXHAUSTED
        and "larger than max" in exc.message
    )


def deployment_wide(exc: Exception) -> bool:
    """Whether ``exc`` would meet every row alike (see ``_DEPLOYMENT_WIDE``)."""
    if isinstance(exc, RPCError):
        return exc.status in _DEPLOYMENT_WIDE and not too_large(exc)
    # A timeout is a kind of OSError, but only this start's.
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)


def refused_for_good(row: OutboxEntry, exc: Exception) -> bool:
    """Whether Temporal can never accept ``row`` as it is, so that retrying it is useless."""
    status = exc.status if isinstance(exc, RPCError) else None
    # A signal to a workflow that has closed (or never ran) can never be delivered.
    gone = row.kind == OutboxKind.SIGNAL and status == RPCStatusCode.NOT_FOUND
    return status in _PERMANENT or gone or too_large(exc)


def describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
