"""A suspended tenant's tasks wait, on no worker and spending no retries, and run once it is
reactivated; its data export runs all the same. Real dev server, real workers."""

import re
import time

from django.tasks import TaskResultStatus
from django_tenants.utils import schema_context

from orchestration.models import TaskHold
from tenants.models import SuspensionReason
from tenants.services import tenant_reactivate, tenant_request_deletion, tenant_suspend
from tenants.workspace.models import Project
from tests.kit import wait_until
from tests.tasks import sample_tasks
from tests.workers import BackgroundWorker, describe, event_types, finished


def held(temporal, result) -> None:
    """Wait until the run holds: its hold recorded and no activity pending."""
    wait_until(
        lambda: TaskHold.objects.filter(workflow_id=result.id).exists(),
        timeout=60,
        what=f"task {result.id} to be held",
    )
    wait_until(
        lambda: describe(temporal, result.id).raw_description.pending_activities == [],
        timeout=30,
        what="the held run to wait on no activity",
    )


def test_a_task_enqueued_while_suspended_runs_only_after_reactivation(
    transactional_db, temporal, queue_prefix, active_tenant
):
    tenant = active_tenant("paused")
    tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
    with schema_context(tenant.schema_name):
        result = sample_tasks.add_project.enqueue("after-reactivation")
    with BackgroundWorker(temporal, kinds=("tenant",)):
        held(temporal, result)
        time.sleep(1.5)  # longer than the first retry interval: it is waiting, not retrying
        result.refresh()
        assert result.status == TaskResultStatus.READY
        assert result.attempts == 0
        with schema_context(tenant.schema_name):
            assert not Project.objects.exists()
        assert event_types(temporal, result.id).count("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED") == 1

        tenant_reactivate(tenant=tenant)
        finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "after-reactivation"
    assert result.attempts == 1  # the held try was no attempt of the task's own
    with schema_context(tenant.schema_name):
        assert list(Project.objects.values_list("name", flat=True)) == ["after-reactivation"]
    assert not TaskHold.objects.exists()
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" in event_types(temporal, result.id)


def test_a_held_task_ends_when_its_tenant_is_deleted(
    transactional_db, temporal, queue_prefix, active_tenant
):
    tenant = active_tenant("leaving")
    tenant_suspend(tenant=tenant, reason=SuspensionReason.OWNER)
    with schema_context(tenant.schema_name):
        result = sample_tasks.add_project.enqueue("never")
    with BackgroundWorker(temporal, kinds=("tenant",)):
        held(temporal, result)
        tenant_request_deletion(tenant_id=tenant.pk)
        finished(result)
    assert result.status == TaskResultStatus.FAILED
    assert re.search(r"is delet(ing|ed): its tasks no longer run", result.errors[-1].traceback)
