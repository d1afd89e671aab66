"""Deleting in batches, the scheduled retention workflows' one loop: an activity that deletes
at most ``batch_size`` rows and returns how many, run until a batch comes back short."""

from collections.abc import Callable

from temporalio import workflow

from orchestration.workflows._steps.common import MEDIUM, within

# Enough batches for millions of rows; past it the next scheduled run carries on.
MAX_BATCHES = 1000
# A batch retries through an outage for up to an hour; the next scheduled run carries on.
BATCH = within(MEDIUM, 3600)


async def delete_in_batches(activity: Callable, *args, batch_size: int) -> int:
    """Run ``activity(*args, batch_size)`` until it deletes fewer than ``batch_size`` (or
    ``MAX_BATCHES`` times); returns how many it deleted in all."""
    total = 0
    for _ in range(MAX_BATCHES):
        deleted = await workflow.execute_activity(activity, args=[*args, batch_size], **BATCH)
        total += deleted
        if deleted < batch_size:
            break
    return total
