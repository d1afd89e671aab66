"""Rolling a new build of the workers out: wait until its workers poll, move new runs to it
(through a ramp, if asked), and wait until the build that was current has no open pinned run,
so that its workers can stop. What ``manage.py temporal_deployment rollout`` and ``drain``
do; see docs/operations.md "Deploying a new worker build"."""

import asyncio
import logging

from django.conf import settings
from temporalio.client import Client

from orchestration.versioning import (
    DeploymentError,
    DeploymentState,
    deployment_describe,
    deployment_set_current,
    deployment_set_ramping,
    version_task_queues,
)

logger = logging.getLogger("orchestration.versioning")

# Seconds between two looks at the deployment while waiting (the server allows a
# deployment only a few requests a second).
WAIT_STEP = 1.0


async def open_pinned_runs(client: Client, *, build_id: str, name: str | None = None) -> int:
    """Open runs pinned to the version: the runs only its workers can go on with.
    (Auto-upgrading runs recorded on it move to the current version at their next task.)"""
    name = name or settings.TEMPORAL_DEPLOYMENT_NAME
    if "'" in name + build_id:  # neither can hold one; the query must not be broken by it
        raise DeploymentError(f"no worker deployment version is named {name}:{build_id}.")
    query = (
        f"TemporalWorkerDeploymentVersion = '{name}:{build_id}' "
        "AND TemporalWorkflowVersioningBehavior = 'Pinned' AND ExecutionStatus = 'Running'"
    )
    return (await client.count_workflows(query)).count


async def _wait(check, *, within: float, what: str):
    """``await check()`` every ``WAIT_STEP`` seconds until it returns something truthy
    (returned); ``DeploymentError`` naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (value := await check()):
        if loop.time() >= deadline:
            raise DeploymentError(f"gave up after {within:g} s waiting for {what}.")
        await asyncio.sleep(WAIT_STEP)
    return value


async def deployment_wait_polled(
    client: Client,
    *,
    build_id: str,
    within: float,
    name: str | None = None,
    ignore_missing_task_queues: bool = False,
) -> DeploymentState:
    """Wait until ``build_id``'s workers poll every task queue the current version's
    workers poll (or, with ``ignore_missing_task_queues``, until they poll at all); returns
    the deployment's state then. A version that polls only some of them would strand the
    new runs of the others."""

    async def polled() -> DeploymentState | None:
        try:
            state = await deployment_describe(client, name=name)
        except DeploymentError as exc:
            if exc.not_found:  # no worker of the deployment has polled yet
                return None
            raise
        if build_id not in {version.build_id for version in state.versions}:
            return None
        current = state.current_build_id
        if ignore_missing_task_queues or not current or current == build_id:
            return state
        wanted = await version_task_queues(client, build_id=current, name=name)
        polling = await version_task_queues(client, build_id=build_id, name=name)
        return state if wanted <= polling else None

    return await _wait(
        polled,
        within=within,
        what=f"build {build_id} to poll every task queue of the current version",
    )


async def deployment_wait_drained(
    client: Client, *, build_id: str, within: float, name: str | None = None
) -> None:
    """Wait until no open run is pinned to ``build_id``: then its workers can stop."""

    async def drained() -> bool:
        left = await open_pinned_runs(client, build_id=build_id, name=name)
        if left:
            logger.info("build %s: %d open pinned runs", build_id, left)
        return not left

    try:
        await _wait(drained, within=within, what=f"build {build_id} to drain")
    except DeploymentError:
        left = await open_pinned_runs(client, build_id=build_id, name=name)
        raise DeploymentError(
            f"build {build_id} still has {left} open pinned run(s) after {within:g} s: keep "
            "its workers running, and wait again with `manage.py temporal_deployment drain "
            f"{build_id}`."
        ) from None


async def deployment_roll_out(
    client: Client,
    *,
    build_id: str,
    name: str | None = None,
    ramp: tuple[float, ...] = (),
    ramp_interval: float = 60.0,
    poll_timeout: float = 120.0,
    drain_timeout: float = 900.0,
    ignore_missing_task_queues: bool = False,
) -> str:
    """Move new runs to ``build_id`` once its workers poll: through the ``ramp``
    percentages (``ramp_interval`` seconds each), then as the current version; then wait
    until the version that was current has no open pinned run. Returns that version's build
    id ("" when ``build_id`` was current already, or nothing was). Raises
    ``DeploymentError`` on a timeout, with the deployment as far as it got: the old
    workers must not stop then."""
    state = await deployment_wait_polled(
        client,
        build_id=build_id,
        within=poll_timeout,
        name=name,
        ignore_missing_task_queues=ignore_missing_task_queues,
    )
    previous = state.current_build_id
    if previous == build_id:
        logger.info("build %s is current already", build_id)
        return ""
    for percentage in ramp:
        await deployment_set_ramping(
            client,
            build_id=build_id,
            percentage=percentage,
            name=name,
            ignore_missing_task_queues=ignore_missing_task_queues,
        )
        logger.info("build %s ramping at %g%%", build_id, percentage)
        await asyncio.sleep(ramp_interval)
    await deployment_set_current(
        client,
        build_id=build_id,
        name=name,
        ignore_missing_task_queues=ignore_missing_task_queues,
    )
    logger.info("build %s is current (was %s)", build_id, previous or "none")
    if previous:
        await deployment_wait_drained(client, build_id=previous, within=drain_timeout, name=name)
        logger.info("build %s has drained", previous)
    return previous
