"""Worker Versioning: the workers' worker deployment, their build id, and the deployment's
routing (which version new runs start on). See docs/versioning.md "Worker Versioning".

The Python client has no typed calls for worker deployments; these wrap the workflow
service's RPCs (the ones ``temporal worker deployment ...`` uses) and turn their errors
into ``DeploymentError`` with a sentence an operator can act on.
"""

import asyncio
import functools
import hashlib
import importlib.util
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

logger = logging.getLogger("orchestration.versioning")

# The code a build id stands for: what the workers replay and run.
_SOURCE_DIRS = ("workflows", "activities")


class DeploymentError(Exception):
    """A deployment request the server refused, or a deployment it does not know
    (``not_found``)."""

    def __init__(self, message: str, *, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True)
class VersionSummary:
    build_id: str
    status: str  # current, ramping, draining, drained, inactive
    drainage: str  # "" unless draining or drained


@dataclass(frozen=True)
class DeploymentState:
    name: str
    current_build_id: str  # "": none (new runs go to unversioned workers)
    ramping_build_id: str
    ramping_percentage: float
    versions: tuple[VersionSummary, ...]


def _source_files() -> list[Path]:
    package = Path(__file__).resolve().parent
    files = [f for d in _SOURCE_DIRS for f in (package / d).rglob("*.py")]
    # Modules a deployment adds to the same workers (TEMPORAL_WORKER_EXTENSIONS).
    for module in getattr(settings, "TEMPORAL_WORKER_EXTENSIONS", []):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            files.append(Path(spec.origin))
    return sorted(set(files))


@functools.cache
def source_build_id() -> str:
    """A hash of the workflow and activity sources: it changes with the code the workers
    run, and is the same on every machine that holds that code (file contents, not
    bytecode or mtimes). Computed once a process."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in _source_files():
        name = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"src-{digest.hexdigest()[:12]}"


def build_id() -> str:
    """``TEMPORAL_BUILD_ID``, else the hash of the sources."""
    return settings.TEMPORAL_BUILD_ID or source_build_id()


def worker_deployment_config(*, build: str | None = None) -> WorkerDeploymentConfig | None:
    """The workers' deployment config; None with ``TEMPORAL_WORKER_VERSIONING`` off.

    No default behaviour: the SDK then refuses to start a versioned worker hosting a
    workflow that does not declare ``versioning_behavior``, naming it, rather than letting
    an undeclared workflow silently get one."""
    if not settings.TEMPORAL_WORKER_VERSIONING:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(
            deployment_name=settings.TEMPORAL_DEPLOYMENT_NAME, build_id=build or build_id()
        ),
        use_worker_versioning=True,
    )


def _name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def _refused(exc: RPCError, name: str) -> DeploymentError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        # The server's words name what is missing (the deployment, or a build id in it).
        return DeploymentError(
            f"Temporal: {exc.message} (a worker deployment and each of its versions exist "
            "once workers with TEMPORAL_WORKER_VERSIONING on have polled).",
            not_found=True,
        )
    if exc.status == RPCStatusCode.UNIMPLEMENTED:
        return DeploymentError(
            "this Temporal server does not support Worker Versioning; turn "
            "TEMPORAL_WORKER_VERSIONING off."
        )
    return DeploymentError(f"Temporal refused the request for deployment {name!r}: {exc.message}")


# The server allows a worker deployment only a few requests a second ("too many requests
# issued to Worker Deployment"): the workers of a deploy starting together, or an operator's
# command beside them, meet that limit for a moment. Such a request is sent again after a
# growing, jittered pause, for up to this many seconds, before it counts as refused.
BUSY_WAIT = 30.0


async def _request(name: str, call, request):
    """``await call(request)``, sent again while the deployment is busy (``BUSY_WAIT``);
    any other refusal, or one that lasts, raises ``DeploymentError``."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + BUSY_WAIT, 0.2
    while True:
        try:
            return await call(request)
        except RPCError as exc:
            if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED or loop.time() + pause > deadline:
                raise _refused(exc, name) from exc
            logger.info("worker deployment %s is busy (%s); asking again", name, exc.message)
        await asyncio.sleep(pause * random.uniform(0.5, 1.0))  # noqa: S311 - jitter only
        pause = min(pause * 2, 5.0)


async def deployment_describe(client: Client, *, name: str | None = None) -> DeploymentState:
    name = name or settings.TEMPORAL_DEPLOYMENT_NAME
    response = await _request(
        name,
        client.workflow_service.describe_worker_deployment,
        DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=name),
    )
    return _state(response.worker_deployment_info)


def _state(info) -> DeploymentState:
    routing = info.routing_config
    versions = tuple(
        VersionSummary(
            build_id=summary.deployment_version.build_id,
            status=_name(
                WorkerDeploymentVersionStatus,
                summary.status,
                "WORKER_DEPLOYMENT_VERSION_STATUS_",
            ),
            drainage=(
                ""
                if summary.drainage_status
                == VersionDrainageStatus.VERSION_DRAINAGE_STATUS_UNSPECIFIED
                else _name(
                    VersionDrainageStatus, summary.drainage_status, "VERSION_DRAINAGE_STATUS_"
                )
            ),
        )
        for summary in info.version_summaries
    )
    return DeploymentState(
        name=info.name,
        current_build_id=routing.current_deployment_version.build_id,
        ramping_build_id=routing.ramping_deployment_version.build_id,
        ramping_percentage=routing.ramping_version_percentage,
        versions=versions,
    )


async def deployment_set_current(
    client: Client,
    *,
    build_id: str,
    name: str | None = None,
    allow_no_pollers: bool = False,
    ignore_missing_task_queues: bool = False,
) -> None:
    """Make ``build_id`` the version new runs start on (and auto-upgrading runs move to).
    Pinned runs stay on the version they started on. The server refuses a version no
    worker has polled for, or one that does not poll every queue the current one does,
    unless told otherwise."""
    name = name or settings.TEMPORAL_DEPLOYMENT_NAME
    await _request(
        name,
        client.workflow_service.set_worker_deployment_current_version,
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace,
            deployment_name=name,
            build_id=build_id,
            allow_no_pollers=allow_no_pollers,
            ignore_missing_task_queues=ignore_missing_task_queues,
            identity=client.identity,
        ),
    )


async def deployment_set_ramping(
    client: Client,
    *,
    build_id: str,
    percentage: float,
    name: str | None = None,
    ignore_missing_task_queues: bool = False,
) -> None:
    """Send ``percentage`` % of new runs (and of auto-upgrading runs' tasks) to
    ``build_id``; an empty ``build_id`` stops the ramp."""
    name = name or settings.TEMPORAL_DEPLOYMENT_NAME
    if not 0 <= percentage <= 100:
        raise DeploymentError(f"a ramp percentage is from 0 to 100; got {percentage}.")
    await _request(
        name,
        client.workflow_service.set_worker_deployment_ramping_version,
        SetWorkerDeploymentRampingVersionRequest(
            namespace=client.namespace,
            deployment_name=name,
            build_id=build_id,
            percentage=percentage if build_id else 0.0,
            ignore_missing_task_queues=ignore_missing_task_queues,
            identity=client.identity,
        ),
    )


async def deployment_claim_current(client: Client, *, build_id: str) -> bool:
    """Make ``build_id`` current when the deployment has no current version yet (its first
    deploy, or the first start of ``make dev``); True when it did.

    Without this, new runs on the deployment's queues would wait for unversioned workers
    that no longer exist. A deployment that already has a current version is left alone:
    moving it is an operator's decision (``manage.py temporal_deployment``)."""
    name = settings.TEMPORAL_DEPLOYMENT_NAME
    try:
        state = await deployment_describe(client, name=name)
    except DeploymentError as exc:
        if not exc.not_found:
            raise
        state = None
    if state is not None and state.current_build_id:
        return False
    # Before this worker polls (the server would otherwise refuse a version it has not
    # seen): its pollers arrive a moment later.
    await deployment_set_current(client, build_id=build_id, name=name, allow_no_pollers=True)
    logger.info("worker deployment %s had no current version; made %s current", name, build_id)
    return True


async def version_task_queues(
    client: Client, *, build_id: str, name: str | None = None
) -> frozenset[tuple[str, int]]:
    """The (task queue, type) pairs the version's workers have polled."""
    name = name or settings.TEMPORAL_DEPLOYMENT_NAME
    response = await _request(
        name,
        client.workflow_service.describe_worker_deployment_version,
        DescribeWorkerDeploymentVersionRequest(
            namespace=client.namespace,
            deployment_version=VersionProto(deployment_name=name, build_id=build_id),
        ),
    )
    infos = response.worker_deployment_version_info.task_queue_infos
    return frozenset((info.name, info.type) for info in infos)
