"""Activity option presets and the error types no retry can fix.

Workflows pass ``**SHORT`` / ``**MEDIUM`` / ``**LONG`` to ``workflow.execute_activity``.
Long steps heartbeat, so a worker killed mid-step is noticed after the heartbeat timeout
rather than after the whole start-to-close timeout.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

from orchestration.errors import INVALID_INPUT, INVALID_STATE, NON_RETRYABLE_ERROR_TYPES

__all__ = ["INVALID_INPUT", "INVALID_STATE", "LONG", "MEDIUM", "NON_RETRYABLE_ERROR_TYPES", "SHORT"]

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
)

# A quick database write: status changes, rows.
SHORT = {"start_to_close_timeout": timedelta(seconds=15), "retry_policy": _RETRY}
# Several statements or an email: still bounded, a little slower.
MEDIUM = {"start_to_close_timeout": timedelta(minutes=2), "retry_policy": _RETRY}
# DDL over a whole schema (create, migrate, drop): heartbeats while it works.
LONG = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(seconds=20),
    "retry_policy": _RETRY,
}
