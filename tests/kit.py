"""The one way tests wait for a condition, and the bridge from sync tests to async clients."""

import asyncio
import inspect
import time


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.05):
    """Call ``predicate`` until it returns something truthy, and return that; after
    ``timeout`` seconds fail with an ``AssertionError`` naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        if value := predicate():
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# The same arguments as its sync twin, ``timeout`` included (hence the noqa).
async def wait_until_async(
    predicate,
    *,
    timeout: float,  # noqa: ASYNC109
    what: str,
    interval: float = 0.01,
):
    """``wait_until`` for async tests: the event loop runs on meanwhile, and ``predicate``
    may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


def run_async(coro):
    """Run ``coro`` to completion from a sync test (a fresh event loop each time)."""
    return asyncio.run(coro)
