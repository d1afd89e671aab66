"""The provisioning saga's undos: they outlast an outage, and never tear down a live tenant."""

import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.activities import tenants as steps
from orchestration.workflows import TenantProvisioningWorkflow
from orchestration.workflows.tenant_provisioning import TenantProvisioningInput


class FakeSteps:
    """Every provisioning activity, by name, recording calls. ``create_domain`` fails for
    good; ``drop_schema`` fails ``outage`` times with a retryable error before it works."""

    def __init__(self, outage: int):
        self.calls: list[tuple] = []
        self.outage = outage

    @property
    def activities(self) -> list:
        def fake(real, body=None):
            @activity.defn(name=real.__name__)
            async def run(*args):
                self.calls.append((real.__name__, *args[1:]))
                if body is not None:
                    return body()

            return run

        def domain_fails():
            raise ApplicationError("no such domain table", non_retryable=True)

        def drop_fails_during_outage():
            if sum(c[0] == "tenant_drop_schema" for c in self.calls) <= self.outage:
                raise ApplicationError("database unavailable")  # retryable
            return True

        special = {
            steps.tenant_create_domain: domain_fails,
            steps.tenant_drop_schema: drop_fails_during_outage,
        }
        return [fake(a, special.get(a)) for a in steps.PROVISIONING]


async def test_undos_outlast_an_outage_longer_than_forward_retries(time_skipping_env):
    fake = FakeSteps(outage=12)  # forward steps give up after 10 attempts
    queue = f"saga-{uuid.uuid4()}"
    tenant_id = str(uuid.uuid4())
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[TenantProvisioningWorkflow],
        activities=fake.activities,
    ):  # fmt: skip
        with pytest.raises(WorkflowFailureError) as failure:
            await time_skipping_env.client.execute_workflow(
                TenantProvisioningWorkflow.run, TenantProvisioningInput(tenant_id=tenant_id),
                id=f"saga-{uuid.uuid4()}", task_queue=queue,
            )  # fmt: skip
    assert failure.value.cause.type == "ProvisioningFailed"
    # Undone in reverse, the tenant marked failed last, with the step that failed.
    assert [c[0] for c in fake.calls] == [
        "tenant_mark_provisioning", "tenant_create_schema", "tenant_migrate_schema",
        "tenant_create_domain", "tenant_delete_domains", *["tenant_drop_schema"] * 13,
        "tenant_mark_failed",
    ]  # fmt: skip
    assert fake.calls[-1] == ("tenant_mark_failed", "create_domain: no such domain table")


# --- the guard: an undo that comes too late never breaks a live tenant ---------------------


@pytest.mark.django_db
def test_teardown_steps_refuse_an_active_tenant(owner):
    from django.db import connection

    from accounts.models import Membership
    from accounts.services import membership_create_owner, membership_remove_owner
    from tenants.models import Domain, TenantIsActive, TenantStatus
    from tenants.services import (
        domain_create_primary,
        domain_delete_all,
        tenant_create,
        tenant_schema_drop,
    )

    tenant = tenant_create(name="Acme", subdomain=f"t{uuid.uuid4().hex[:10]}", owner=owner)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{tenant.schema_name}"')
    domain_create_primary(tenant_id=tenant.pk)
    membership_create_owner(tenant_id=tenant.pk)
    type(tenant).objects.filter(pk=tenant.pk).update(status=TenantStatus.ACTIVE)
    for undo in (tenant_schema_drop, domain_delete_all, membership_remove_owner):
        with pytest.raises(TenantIsActive):
            undo(tenant_id=tenant.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [tenant.schema_name])
        assert cursor.fetchone() is not None
        cursor.execute(f'DROP SCHEMA "{tenant.schema_name}"')
    assert Domain.objects.filter(tenant=tenant).count() == 1
    assert Membership.objects.filter(tenant=tenant).count() == 1
