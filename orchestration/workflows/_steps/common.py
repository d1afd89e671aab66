"""Activity option presets and the error types no retry can fix.

Workflows pass ``**SHORT`` / ``**MEDIUM`` / ``**LONG`` to ``workflow.execute_activity``, and
``**UNDO_SHORT`` / ``**UNDO_LONG`` for a saga's compensations. Long steps heartbeat, so a
worker killed mid-step is noticed after the heartbeat timeout rather than after the whole
start-to-close timeout.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

from orchestration.errors import INVALID_INPUT, INVALID_STATE, NON_RETRYABLE_ERROR_TYPES

__all__ = [
    "INVALID_INPUT", "INVALID_STATE", "LONG", "MEDIUM", "NON_RETRYABLE_ERROR_TYPES", "SHORT",
    "UNDO_LONG", "UNDO_SHORT",
]  # fmt: skip

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
)

# Compensations are retried until they succeed (or meet an error no retry can fix): a
# forward step usually gives up because of an outage, and undos that gave up in the same
# outage would leave the debris the saga exists to remove.
_UNDO_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=0,  # unlimited
    non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
)
_QUICK = {"start_to_close_timeout": timedelta(seconds=15)}
_DDL = {"start_to_close_timeout": timedelta(minutes=30), "heartbeat_timeout": timedelta(seconds=20)}

# A quick database write: status changes, rows.
SHORT = {**_QUICK, "retry_policy": _RETRY}
# Several statements or an email: still bounded, a little slower.
MEDIUM = {"start_to_close_timeout": timedelta(minutes=2), "retry_policy": _RETRY}
# DDL over a whole schema (create, migrate, drop): heartbeats while it works.
LONG = {**_DDL, "retry_policy": _RETRY}
UNDO_SHORT = {**_QUICK, "retry_policy": _UNDO_RETRY}
UNDO_LONG = {**_DDL, "retry_policy": _UNDO_RETRY}
