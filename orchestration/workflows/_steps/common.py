"""Activity option presets and the error types no retry can fix.

Workflows pass ``**SHORT`` / ``**MEDIUM`` / ``**LONG`` to ``workflow.execute_activity``, and
``**UNDO_SHORT`` / ``**UNDO_LONG`` for a saga's compensations. Long steps heartbeat, so a
worker killed mid-step is noticed after the heartbeat timeout rather than after the whole
start-to-close timeout.

Every step retries with capped exponential back-off (1 s doubling to one attempt a minute)
for as long as an outage can last: ``within(options, window)`` bounds a forward step by
``schedule_to_close_timeout`` (``STEP_RETRY_WINDOW``, 24 h by default, carried in the run's
input); undos are never bounded. Errors no retry can fix (``NON_RETRYABLE_ERROR_TYPES``)
fail at once.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

from orchestration.errors import INVALID_INPUT, INVALID_STATE, NON_RETRYABLE_ERROR_TYPES

__all__ = [
    "DEFAULT_RETRY_WINDOW",
    "INVALID_INPUT",
    "INVALID_STATE",
    "LONG",
    "MEDIUM",
    "NON_RETRYABLE_ERROR_TYPES",
    "SHORT",
    "UNDO_LONG",
    "UNDO_SHORT",
    "within",
]

# Forward steps and undos alike retry until they succeed or meet an error no retry can fix;
# a forward step is bounded by its retry window (``within``), an undo never: undos that gave
# up in the outage that failed the step would leave the debris the saga exists to remove.
_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=0,  # unlimited: bounded by schedule_to_close_timeout
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
UNDO_SHORT = {**_QUICK, "retry_policy": _RETRY}
UNDO_LONG = {**_DDL, "retry_policy": _RETRY}


# How long a forward step keeps retrying unless its run's input says otherwise (the inputs'
# ``retry_window_seconds`` default; the receivers pass STEP_RETRY_WINDOW).
DEFAULT_RETRY_WINDOW = 24 * 3600


def within(options: dict, window_seconds: int) -> dict:
    """``options`` of a forward step that keeps retrying for ``window_seconds`` at most."""
    return {**options, "schedule_to_close_timeout": timedelta(seconds=window_seconds)}
