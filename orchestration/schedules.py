"""The project's Temporal Schedules, created or updated idempotently.

A schedule is *owned* by the project when its id is in ``project_schedules()``; syncing
creates or updates exactly those and leaves every other schedule in the namespace alone.
"""

import dataclasses
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.tasks import task_backends
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)

from orchestration.routing import deployment_system_route
from orchestration.tasks import TemporalTaskBackend
from orchestration.workflows import (
    CustomDomainsRecheckInput,
    CustomDomainsRecheckWorkflow,
    SchemaPoolRefillInput,
    SchemaPoolRefillWorkflow,
    TaskResultsPruneInput,
    TaskResultsPruneWorkflow,
    TenantExportsPruneInput,
    TenantExportsPruneWorkflow,
    TokenCleanupInput,
    TokenCleanupWorkflow,
)


def token_cleanup_schedule_id() -> str:
    return f"{settings.TEMPORAL_QUEUE_PREFIX}-token-cleanup"


def schema_pool_schedule_id() -> str:
    return f"{settings.TEMPORAL_QUEUE_PREFIX}-schema-pool-refill"


def task_results_schedule_id() -> str:
    return f"{settings.TEMPORAL_QUEUE_PREFIX}-task-results-prune"


def tenant_exports_schedule_id() -> str:
    return f"{settings.TEMPORAL_QUEUE_PREFIX}-tenant-exports-prune"


def custom_domains_schedule_id() -> str:
    return f"{settings.TEMPORAL_QUEUE_PREFIX}-custom-domains-recheck"


# Results and exports are kept for days: an hour's lateness in deleting them is no matter.
TASK_RESULTS_PRUNE_EVERY = timedelta(hours=1)
TENANT_EXPORTS_PRUNE_EVERY = timedelta(hours=1)


def task_result_retentions() -> dict[str, int]:
    """Seconds each ``TemporalTaskBackend`` of ``TASKS`` keeps its results, by alias."""
    return {
        alias: task_backends[alias].result_retention_days * 24 * 3600
        for alias in settings.TASKS
        if isinstance(task_backends[alias], TemporalTaskBackend)
    }


def _every(run, params, schedule_id: str, every: timedelta) -> Schedule:
    """A schedule that starts ``run(params)`` on the jobs route every ``every``; a run still
    going when the next is due: the new one is skipped."""
    route = deployment_system_route()
    return Schedule(
        action=ScheduleActionStartWorkflow(
            run, params, id=schedule_id, task_queue=route.task_queue, priority=route.priority
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def project_schedules() -> dict[str, Schedule]:
    cleanup_id = token_cleanup_schedule_id()
    schedules = {
        cleanup_id: _every(
            TokenCleanupWorkflow.run,
            TokenCleanupInput(retention_seconds=settings.TOKEN_RETENTION_DAYS * 24 * 3600),
            cleanup_id,
            timedelta(seconds=settings.TOKEN_CLEANUP_INTERVAL),
        )
    }
    if retentions := task_result_retentions():
        prune_id = task_results_schedule_id()
        schedules[prune_id] = _every(
            TaskResultsPruneWorkflow.run,
            TaskResultsPruneInput(retention_seconds=retentions),
            prune_id,
            TASK_RESULTS_PRUNE_EVERY,
        )
    exports_id = tenant_exports_schedule_id()
    schedules[exports_id] = _every(
        TenantExportsPruneWorkflow.run,
        TenantExportsPruneInput(retention_seconds=settings.TENANT_EXPORT_RETENTION),
        exports_id,
        TENANT_EXPORTS_PRUNE_EVERY,
    )
    domains_id = custom_domains_schedule_id()
    schedules[domains_id] = _every(
        CustomDomainsRecheckWorkflow.run,
        CustomDomainsRecheckInput(grace_seconds=settings.CUSTOM_DOMAIN_GRACE),
        domains_id,
        timedelta(seconds=settings.CUSTOM_DOMAIN_RECHECK_INTERVAL),
    )
    if settings.TENANT_SCHEMA_POOL_SIZE > 0:
        # Claims kick a refill themselves; this run also prunes (stale schemas after a
        # deploy, surplus ones) and catches up on a kick that found another fill running.
        pool_id = schema_pool_schedule_id()
        schedules[pool_id] = _every(
            SchemaPoolRefillWorkflow.run,
            SchemaPoolRefillInput(prune=True),
            pool_id,
            timedelta(seconds=settings.TENANT_SCHEMA_POOL_REFILL_INTERVAL),
        )
    return schedules


async def sync_schedules(
    client: Client,
    schedules: dict[str, Schedule] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Create each project schedule (or each of ``schedules``, by default
    ``project_schedules()``), or update it to the current definition, keeping its state: a
    schedule an operator paused stays paused. ``on_step("<id>: created")`` is called after
    each one. Returns ``{schedule_id: "created" | "updated"}``."""
    outcome = {}
    schedules = project_schedules() if schedules is None else schedules
    for schedule_id, schedule in schedules.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            outcome[schedule_id] = "created"
        except ScheduleAlreadyRunningError:
            await client.get_schedule_handle(schedule_id).update(
                lambda current, new=schedule: ScheduleUpdate(
                    # The definition is ours; the state (paused, its note) is the operator's.
                    schedule=dataclasses.replace(new, state=current.description.schedule.state)
                )
            )
            outcome[schedule_id] = "updated"
        if on_step is not None:
            on_step(f"{schedule_id}: {outcome[schedule_id]}")
    return outcome
