"""Which task queue, with which priority, a workflow runs on. Routing is data.

Tenant work is spread over ``TEMPORAL_QUEUE_SHARDS`` queues by a stable hash of the tenant
id, so one noisy tenant cannot hold a whole deployment's workers; within a queue the
tenant is the Temporal *fairness key*, so tenants also share a queue fairly. Start sites
call ``route_for_tenant`` / ``route_for_system_job``; none spells a queue name.
"""

import hashlib
import uuid
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from django.conf import settings
from temporalio.common import Priority


class QueueKind(StrEnum):
    TENANT = "tenant"  # per-tenant lifecycle work, sharded
    JOBS = "jobs"  # system-wide jobs (schedules, cleanups), one queue


class Workload(IntEnum):
    """Temporal priority keys (1 is served first; the server's default is 3)."""

    INTERACTIVE = 1  # someone is waiting: signup provisioning, email verification
    DEFAULT = 3
    BACKGROUND = 5  # deletion, cleanups


@dataclass(frozen=True)
class Route:
    task_queue: str
    priority: Priority


def shard_for(tenant_id: uuid.UUID | str, shards: int) -> int:
    """Stable shard of a tenant: the same in every process, host and Python version."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    key = uuid.UUID(str(tenant_id)).bytes
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % shards


def queue_name(*, prefix: str, kind: QueueKind, shard: int | None = None) -> str:
    """``<prefix>.<kind>`` for unsharded kinds and ``shards=1``; ``<prefix>.<kind>.<n>``
    for shard n of several."""
    return f"{prefix}.{kind}" if shard is None else f"{prefix}.{kind}.{shard}"


def tenant_queues(*, prefix: str, shards: int, kind: QueueKind = QueueKind.TENANT) -> list[str]:
    if shards == 1:
        return [queue_name(prefix=prefix, kind=kind)]
    return [queue_name(prefix=prefix, kind=kind, shard=n) for n in range(shards)]


def route_for_tenant(
    tenant_id: uuid.UUID | str,
    *,
    prefix: str,
    shards: int,
    kind: QueueKind = QueueKind.TENANT,
    workload: Workload = Workload.DEFAULT,
) -> Route:
    """Route of work for one tenant: its shard's queue, with the tenant as fairness key.
    (Queue names are local to a namespace: the namespace plays no part in a route.)"""
    shard = None if shards == 1 else shard_for(tenant_id, shards)
    return Route(
        task_queue=queue_name(prefix=prefix, kind=kind, shard=shard),
        priority=Priority(priority_key=int(workload), fairness_key=str(tenant_id)),
    )


def route_for_system_job(
    *,
    prefix: str,
    kind: QueueKind = QueueKind.JOBS,
    workload: Workload = Workload.BACKGROUND,
) -> Route:
    return Route(
        task_queue=queue_name(prefix=prefix, kind=kind),
        priority=Priority(priority_key=int(workload)),
    )


def deployment_tenant_route(tenant_id, *, workload: Workload = Workload.DEFAULT) -> Route:
    """``route_for_tenant`` with this deployment's settings."""
    return route_for_tenant(
        tenant_id,
        prefix=settings.TEMPORAL_QUEUE_PREFIX,
        shards=settings.TEMPORAL_QUEUE_SHARDS,
        workload=workload,
    )


def deployment_system_route(*, workload: Workload = Workload.BACKGROUND) -> Route:
    """``route_for_system_job`` with this deployment's settings."""
    return route_for_system_job(
        prefix=settings.TEMPORAL_QUEUE_PREFIX,
        workload=workload,
    )
