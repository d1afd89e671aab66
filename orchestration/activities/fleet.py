"""Fleet migration activities: thin wrappers over ``tenants.fleet``. Each is safe to run
twice (recording a batch is a compare-and-set; migrating a current schema is one SELECT).

``fleet_migrate_tenants`` runs on the tenants' shard queue (the workflow routes it with the
routes ``fleet_next_batch`` returns); the others on the jobs queue, beside the workflow.
"""

from orchestration.activities import django_activity
from orchestration.routing import Workload, deployment_tenant_route
from tenants import fleet
from tenants.schemas.snapshot import sync_template, usable_template


@django_activity(heartbeat_every=5)
def fleet_start(run_id: str) -> int:
    """Bring the template to the code's migrations first (so tenants provisioned during the
    run are made current), then mark the run running; returns how many tenants it covers.
    Heartbeats: its options have a heartbeat timeout, and the template's migration and
    dump (which reads the whole catalog) take longer than it in a database of many
    tenants."""
    if usable_template() is None:
        sync_template()
    return fleet.fleet_run_started(run_id=run_id)


# Batches read by one fleet_next_batch while every tenant read is current: a fleet with
# nothing to apply (a deploy that changed no tenant migration) takes a fifth of the round
# trips. The workflow sees one bigger batch, all current; a batch with a schema behind ends
# the read, so the migrations' batches keep their size. Replay is unaffected: an activity's
# result is read from the history.
CURRENT_REACH = 5


@django_activity
def fleet_next_batch(run_id: str, after: str, size: int) -> dict:
    """The next batch after schema ``after``: ``last``, ``current`` (tenant ids), and
    ``behind`` as ``[tenant_id, task_queue, priority_key]`` routes (background priority,
    the tenant as fairness key)."""
    batch = fleet.fleet_batch(run_id=run_id, after=after, size=size, reach=CURRENT_REACH)
    routes = []
    for tenant_id in batch["behind"]:
        route = deployment_tenant_route(tenant_id, workload=Workload.BACKGROUND)
        routes.append([tenant_id, route.task_queue, route.priority.priority_key])
    return {**batch, "behind": routes}


@django_activity(heartbeat_every=5)
def fleet_migrate_tenants(tenant_ids: list[str]) -> dict:
    """Migrate several schemas of one shard, one after another, giving way to provisionings
    (``FLEET_MIGRATION_GIVE_WAY``): ``{tenant_id: outcome}``. Run again after a failure,
    the schemas done before cost one SELECT each."""
    return fleet.fleet_tenants_migrate(tenant_ids=tenant_ids)


@django_activity
def fleet_record_batch(run_id: str, after: str, last: str, results: dict) -> bool:
    return fleet.fleet_batch_recorded(run_id=run_id, after=after, last=last, results=results)


@django_activity
def fleet_finish(run_id: str, cancelled: bool) -> dict:
    return fleet.fleet_run_finished(run_id=run_id, cancelled=cancelled)


# Hosted by the jobs workers (the workflow's queue) and the tenant workers (the migrations).
ON_JOBS_QUEUE = [fleet_start, fleet_next_batch, fleet_record_batch, fleet_finish]
ON_TENANT_QUEUES = [fleet_migrate_tenants]
