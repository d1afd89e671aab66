"""``django.tasks`` runs held while their tenant is suspended or scheduled for deletion
(``HOLDING_TASKS``), and their release.

A task's activity that finds its tenant so records a hold and fails its attempt with
``TenantSuspended`` (no retry of the activity's own policy is spent); its run
(``DjangoTaskWorkflow``) then waits, on no worker, for the ``tenant_reactivated`` signal and
runs the task again. The tenant's reactivation, restore (or deletion) turns each hold into
that signal through the outbox, in its own transaction.

The hold is written under the tenant's row lock, which the reactivation and the restore
also take: either the activity sees the tenant back and runs the task, or its hold commits
first and the reactivation (restore) releases it. No run waits for a return that has
already happened.
"""

from django.db import transaction

from orchestration.models import TaskHold
from orchestration.outbox import enqueue_signal
from tenants.models import HOLDING_TASKS, Tenant

# The signal a held run waits for (DjangoTaskWorkflow's handler has this name).
RELEASE_SIGNAL = "tenant_reactivated"


def hold_if_suspended(workflow_id: str, tenant_id: str) -> bool:
    """Whether the tenant is suspended or scheduled for deletion; if so the run
    ``workflow_id`` is recorded as held (once: a second hold of the same run replaces the
    first). One unlocked read when the tenant is neither, the common case."""
    tenants = Tenant.objects.filter(pk=tenant_id).values_list("status", flat=True)
    if tenants.first() not in HOLDING_TASKS:
        return False
    with transaction.atomic():
        if tenants.select_for_update().first() not in HOLDING_TASKS:
            return False  # back meanwhile
        TaskHold.objects.update_or_create(
            workflow_id=workflow_id, defaults={"tenant_id": tenant_id}
        )
    return True


def release_held(*, tenant_id) -> int:
    """Signal every run held for the tenant to go on, and forget the holds; returns how
    many. Meant for the transaction that ends the tenant's suspension or scheduled deletion,
    or begins its deletion."""
    holds = list(
        TaskHold.objects.select_for_update()
        .filter(tenant_id=tenant_id)
        .values_list("workflow_id", flat=True)
    )
    for workflow_id in holds:
        enqueue_signal(workflow_id=workflow_id, signal=RELEASE_SIGNAL)
    TaskHold.objects.filter(workflow_id__in=holds).delete()
    return len(holds)
