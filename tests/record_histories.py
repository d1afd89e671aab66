"""Records workflow histories for the replay tests (tests/histories/<scenario>-<label>.json).

After a change to a short workflow (its new baseline; the files of the label it replaces are
deleted by hand), or before a patched change to a long-lived one:

    .venv/bin/python -m tests.record_histories --label v10 -k "provisioning or deletion"

Each ``record_*`` scenario below runs against the embedded PostgreSQL and a Temporal dev
server, started by the test suite's own fixtures (pytest runs this file with them; being
no ``test_*`` file, it is never collected by the suite itself). ``--out DIR`` writes
elsewhere, ``-k NAME`` records only the matching scenarios. See docs/versioning.md.
"""

import argparse
import asyncio
import contextlib
import sys
import threading
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError

HISTORIES = Path(__file__).resolve().parent / "histories"
HOLD_TIMEOUT = 60  # seconds a held step waits for its release, at the most


# --- the scenarios (collected only by main(), below) -----------------------------------------

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")


def record_provisioning_ok_failed_and_deletion(owner, temporal, save):
    """A provisioning that succeeds (the schema from the template, by the first try), then its
    tenant's deletion; one whose first try finds nothing, so that the schema is made by
    migrations on the task queue; and one whose owner membership step fails after doing its
    work, so that every undo runs."""
    from orchestration.activities import tenants as steps
    from orchestration.receivers import deletion_workflow_id, provisioning_workflow_id
    from tenants.models import TenantStatus
    from tenants.services import tenant_request_deletion, tenant_request_provisioning
    from tests.factories import TenantFactory
    from tests.kit import run_async
    from tests.workers import BackgroundWorker, fail_after, no_first_try, settled

    ok = TenantFactory(owner=owner, subdomain="acme")
    slow = TenantFactory(owner=owner, subdomain="slow")
    bad = TenantFactory(owner=owner, subdomain="broken")

    def provisioned(tenant, status) -> None:  # the run closed too: its history is complete
        settled(tenant.pk, status)
        run_async(_closed(temporal, provisioning_workflow_id(tenant.pk, 1)))

    tenant_request_provisioning(tenant_id=ok.pk)
    with BackgroundWorker(temporal):
        provisioned(ok, TenantStatus.ACTIVE)
        tenant_request_deletion(tenant_id=ok.pk)
        settled(ok.pk, TenantStatus.DELETED)
        run_async(_closed(temporal, deletion_workflow_id(ok.pk)))

    tenant_request_provisioning(tenant_id=slow.pk)
    with BackgroundWorker(temporal, replace=no_first_try()):
        provisioned(slow, TenantStatus.ACTIVE)
    failing = steps.tenant_add_owner_membership
    tenant_request_provisioning(tenant_id=bad.pk)
    with BackgroundWorker(temporal, replace={failing.__name__: fail_after(failing)}):
        provisioned(bad, TenantStatus.FAILED)
    save(provisioning_workflow_id(ok.pk, 1), "provisioning-ok")
    save(provisioning_workflow_id(slow.pk, 1), "provisioning-by-migrations")
    save(provisioning_workflow_id(bad.pk, 1), "provisioning-failed")
    save(deletion_workflow_id(ok.pk), "deletion-ok")


def record_provisioning_pooled(owner, temporal, schema_pool, save):
    """A provisioning whose schema is a warm pool schema, claimed by ``create_schema``'s
    first try (a local activity): the whole run is one workflow task."""
    from orchestration.receivers import provisioning_workflow_id
    from tenants.models import TenantStatus
    from tenants.services import tenant_request_provisioning
    from tests.factories import TenantFactory
    from tests.workers import BackgroundWorker, settled

    schema_pool(1)
    tenant = TenantFactory(owner=owner, subdomain="pooled")
    tenant_request_provisioning(tenant_id=tenant.pk)
    with BackgroundWorker(temporal):
        settled(tenant.pk, TenantStatus.ACTIVE)
    save(provisioning_workflow_id(tenant.pk, 1), "provisioning-pooled")


def record_provisioning_cancelled_by_deletion(owner, temporal, save):
    """A tenant deleted while its schema is created the long way (its first try finds
    nothing): the deletion cancels the provisioning run, whose running step is held until
    the run has taken the cancel, then let finish; the undos run, the run ends cancelled,
    and the deletion goes on."""
    from orchestration.activities import tenants as steps
    from orchestration.receivers import deletion_workflow_id, provisioning_workflow_id
    from tenants.models import TenantStatus
    from tenants.services import tenant_request_deletion, tenant_request_provisioning
    from tests.factories import TenantFactory
    from tests.kit import run_async, wait_until
    from tests.workers import (
        BackgroundWorker,
        events_once_cancel_reached_the_step,
        no_first_try,
        settled,
    )

    real = steps.tenant_create_schema
    entered, release = threading.Event(), threading.Event()

    @activity.defn(name=real.__name__)
    def held_step(tenant_id):
        entered.set()
        release.wait(HOLD_TIMEOUT)
        return real(tenant_id)

    replace = {real.__name__: held_step, **no_first_try()}
    tenant = TenantFactory(owner=owner, subdomain="acme")
    tenant_request_provisioning(tenant_id=tenant.pk)
    workflow_id = provisioning_workflow_id(tenant.pk, 1)

    async def cancel_taken():
        client = await Client.connect(temporal)
        return await events_once_cancel_reached_the_step(client.get_workflow_handle(workflow_id))

    with BackgroundWorker(temporal, replace=replace):
        wait_until(entered.is_set, timeout=30, what="create_schema to start")
        tenant_request_deletion(tenant_id=tenant.pk)
        wait_until(
            lambda: run_async(cancel_taken()), timeout=30, what="the run to act on the cancel"
        )
        release.set()
        settled(tenant.pk, TenantStatus.DELETED)
        run_async(_closed(temporal, workflow_id))  # the history is complete
    save(workflow_id, "provisioning-cancelled")
    save(deletion_workflow_id(tenant.pk), "deletion-during-provisioning")


def record_provisioning_superseded(owner, temporal, save):
    """A tenant deleted before its provisioning began: the run's first step finds it
    deleting, and the run ends, completed, having done nothing."""
    from orchestration.receivers import provisioning_workflow_id
    from tenants.models import TenantStatus
    from tenants.services import tenant_request_deletion, tenant_request_provisioning
    from tests.factories import TenantFactory
    from tests.kit import run_async
    from tests.workers import BackgroundWorker, settled

    tenant = TenantFactory(owner=owner, subdomain="gone")
    tenant_request_provisioning(tenant_id=tenant.pk)
    tenant_request_deletion(tenant_id=tenant.pk)
    workflow_id = provisioning_workflow_id(tenant.pk, 1)
    with BackgroundWorker(temporal):
        settled(tenant.pk, TenantStatus.DELETED)
        run_async(_closed(temporal, workflow_id))
    save(workflow_id, "provisioning-superseded")


def record_fleet_failed(owner, temporal, settings, save):
    """A fleet run over three tenants in batches of two: one schema migrated, one broken
    (its migration fails and is recorded), one already current."""
    from django.db import transaction

    from tenants import fleet
    from tenants.models import TenantStatus
    from tenants.schemas.create import create_schema
    from tenants.schemas.snapshot import sync_template
    from tests.factories import TenantFactory
    from tests.kit import run_async, wait_until
    from tests.orchestration.test_fleet import forget_workspace
    from tests.workers import BackgroundWorker

    settings.FLEET_MIGRATION_BATCH_SIZE = 2
    sync_template()
    tenants = [TenantFactory(owner=owner, status=TenantStatus.ACTIVE) for _ in range(3)]
    for tenant in tenants:
        create_schema(tenant.schema_name)
    forget_workspace(tenants[0].schema_name)
    forget_workspace(tenants[1].schema_name, drop_tables=False)
    with transaction.atomic():
        run, _ = fleet.fleet_run_request(concurrency=2)
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        wait_until(
            lambda: not type(run).objects.get(pk=run.pk).is_open,
            timeout=120,
            what="the fleet run to end",
        )
        run_async(_closed(temporal, run.workflow_id))  # the history is complete
    save(run.workflow_id, "fleet-failed")


def record_onboarding_verified(temporal, save):
    """A signup's onboarding (it starts on the new tenant's route, so the tenant queues are
    polled too) that ends with the email verified."""
    from django.core import mail

    from accounts.models import Token, TokenPurpose
    from accounts.services import token_raw_value, user_verify_email
    from orchestration.receivers import onboarding_workflow_id
    from tenants.models import TenantStatus
    from tenants.services import account_signup
    from tests.factories import PASSWORD
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, settled, workflow_result

    user, tenant, _ = account_signup(
        email="ada@example.com", password=PASSWORD, organization_name="Acme", subdomain="acme"
    )
    token = Token.objects.get(user=user, purpose=TokenPurpose.EMAIL_VERIFICATION)
    workflow_id = onboarding_workflow_id(user.pk)
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        wait_until(lambda: mail.outbox, timeout=30, what="the verification email")
        user_verify_email(raw_token=token_raw_value(token))
        run_async(workflow_result(temporal, workflow_id))
        settled(tenant.pk, TenantStatus.ACTIVE)  # the signup's provisioning, left complete
    save(workflow_id, "onboarding-verified")


def record_deletion_grace_purged_and_restored(active_tenant, temporal, settings, save):
    """Two scheduled deletions: one whose grace period (4 s) runs out, with the scheduling's
    email, the reminder and the purge; one restored after its email, its run ended by the
    ``end_grace`` signal."""
    from django.core import mail

    from tenants.models import TenantStatus, deletion_grace_workflow_id
    from tenants.services.deletion import tenant_restore, tenant_schedule_deletion
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, settled

    settings.TENANT_DELETION_GRACE, settings.TENANT_DELETION_REMINDER_BEFORE = 4, 2
    settings.EMAIL_RECIPIENT_COOLDOWN = 0  # both tenants have the same owner
    purged, kept = active_tenant("purged"), active_tenant("kept")
    with BackgroundWorker(temporal):
        tenant_schedule_deletion(tenant=purged)
        settled(purged.pk, TenantStatus.DELETED)
        settings.TENANT_DELETION_GRACE = 3600
        tenant_schedule_deletion(tenant=kept)
        wait_until(lambda: len(mail.outbox) == 3, timeout=30, what="the scheduling's email")
        tenant_restore(tenant=kept)
        for tenant in (purged, kept):
            run_async(_closed(temporal, deletion_grace_workflow_id(tenant.pk, 1)))
    save(deletion_grace_workflow_id(purged.pk, 1), "deletion-grace-purged")
    save(deletion_grace_workflow_id(kept.pk, 1), "deletion-grace-restored")


def record_onboarding_abandoned(temporal, settings, save):
    """A signup whose owner never verifies, on second-long timers: reminded, expired, then
    (with the abandonment stages) the organisation suspended and its deletion asked for."""
    from orchestration.receivers import onboarding_workflow_id
    from tenants.models import TenantStatus
    from tenants.services import account_signup
    from tests.factories import PASSWORD
    from tests.kit import run_async
    from tests.workers import BackgroundWorker, settled, workflow_result

    settings.ONBOARDING_REMIND_AFTER, settings.ONBOARDING_EXPIRE_AFTER = 1, 2
    settings.ONBOARDING_SUSPEND_AFTER, settings.ONBOARDING_DELETE_AFTER = 4, 6
    user, tenant, _ = account_signup(
        email="ada@example.com", password=PASSWORD, organization_name="Acme", subdomain="acme"
    )
    workflow_id = onboarding_workflow_id(user.pk)
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        settled(tenant.pk, TenantStatus.ACTIVE)
        run_async(workflow_result(temporal, workflow_id))
    save(workflow_id, "onboarding-abandoned")


def record_verification_email_and_token_cleanup(temporal, settings, save):
    """A verification email sent again on request; then a token clean-up run."""
    from django.core import mail

    from accounts.services import verification_email_resend
    from orchestration.models import OutboxEntry
    from orchestration.routing import QueueKind, queue_name
    from orchestration.workflows import TokenCleanupInput, TokenCleanupWorkflow
    from tenants.models import TenantStatus
    from tenants.services import account_signup
    from tests.factories import PASSWORD
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, settled, workflow_result

    user, tenant, _ = account_signup(
        email="ada@example.com", password=PASSWORD, organization_name="Acme", subdomain="acme"
    )
    jobs = queue_name(prefix=settings.TEMPORAL_QUEUE_PREFIX, kind=QueueKind.JOBS)

    async def cleanup() -> str:
        client = await Client.connect(temporal)
        handle = await client.start_workflow(
            TokenCleanupWorkflow.run,
            TokenCleanupInput(retention_seconds=0, batch_size=2),
            id=f"token-cleanup-{user.pk}",
            task_queue=jobs,
        )
        await handle.result()
        return handle.id

    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        wait_until(lambda: mail.outbox, timeout=30, what="the signup's verification email")
        verification_email_resend(email=user.email)
        row = OutboxEntry.objects.get(workflow_type="VerificationEmailWorkflow")
        wait_until(
            lambda: OutboxEntry.objects.get(pk=row.pk).status == "started",
            timeout=30,
            what="the email's run to start",
        )
        assert run_async(workflow_result(temporal, row.workflow_id)) is True
        settled(tenant.pk, TenantStatus.ACTIVE)  # the signup's provisioning, left complete
        cleanup_id = run_async(cleanup())
    save(row.workflow_id, "verification-email")
    save(cleanup_id, "token-cleanup")


def record_account_email_password_reset(temporal, settings, save):
    """A password reset asked for through the service: its email sent by the worker."""
    from django.core import mail

    from accounts.services.passwords import password_reset_request
    from orchestration.models import OutboxEntry
    from orchestration.workflows import AccountEmailWorkflow
    from tests.factories import UserFactory
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, workflow_result

    user = UserFactory(email="ada@example.com")
    with BackgroundWorker(temporal, kinds=("jobs",)):
        password_reset_request(email=user.email)
        row = OutboxEntry.objects.get(workflow_type=AccountEmailWorkflow.__name__)
        wait_until(lambda: mail.outbox, timeout=30, what="the password reset email")
        assert run_async(workflow_result(temporal, row.workflow_id)) == [True]
    save(row.workflow_id, "account-email-password-reset")


def record_account_email_email_change(temporal, settings, save):
    """An email change asked for through the service: the confirmation to the new address
    and the notice to the old one, sent by the worker."""
    from django.core import mail

    from accounts.services.email_change import email_change_request
    from orchestration.models import OutboxEntry
    from orchestration.workflows import AccountEmailWorkflow
    from tests.factories import UserFactory
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, workflow_result

    user = UserFactory(email="ada@example.com")
    with BackgroundWorker(temporal, kinds=("jobs",)):
        email_change_request(user=user, new_email="ada.new@example.com")
        row = OutboxEntry.objects.get(workflow_type=AccountEmailWorkflow.__name__)
        wait_until(lambda: len(mail.outbox) == 2, timeout=30, what="both emails")
        assert run_async(workflow_result(temporal, row.workflow_id)) == [True, True]
    save(row.workflow_id, "account-email-email-change")


def record_schema_pool_refill(temporal, settings, save):
    """A scheduled refill (it prunes first) that fills an empty pool of two."""
    from orchestration.routing import QueueKind, queue_name
    from orchestration.workflows import SchemaPoolRefillInput, SchemaPoolRefillWorkflow
    from tenants import pool
    from tenants.schemas.snapshot import sync_template
    from tests.kit import run_async
    from tests.workers import BackgroundWorker

    settings.TENANT_SCHEMA_POOL_SIZE = 2
    assert sync_template() is not None, "no snapshot stored (is pg_dump missing?)"
    jobs = queue_name(prefix=settings.TEMPORAL_QUEUE_PREFIX, kind=QueueKind.JOBS)

    async def refill() -> str:
        client = await Client.connect(temporal)
        handle = await client.start_workflow(
            SchemaPoolRefillWorkflow.run,
            SchemaPoolRefillInput(prune=True),
            id="schema-pool-refill-recorded",
            task_queue=jobs,
        )
        assert await handle.result() == 2
        return handle.id

    with BackgroundWorker(temporal, kinds=("jobs",)):
        workflow_id = run_async(refill())
    save(workflow_id, "schema-pool-refill")
    settings.TENANT_SCHEMA_POOL_SIZE = 0
    pool.prune()  # drops the pool schemas it built


def record_django_task_ok_and_failed(temporal, settings, save):
    """A django.tasks task that succeeds on its second attempt (it reads its context), and
    one that raises on every attempt until its policy gives up."""
    from tests.kit import wait_until
    from tests.tasks import sample_tasks
    from tests.workers import BackgroundWorker

    settings.TASKS = {
        "default": {**settings.TASKS["default"], "OPTIONS": {"RETRY": {"max_attempts": 2}}}
    }
    ok = sample_tasks.flaky.enqueue(1)
    failed = sample_tasks.boom.enqueue("recorded failure")
    with BackgroundWorker(temporal, kinds=("jobs",)):
        for result in (ok, failed):
            wait_until(
                lambda r=result: r.refresh() or r.is_finished,
                timeout=60,
                what=f"task {result.id} to finish",
            )
    save(ok.id, "django-task-ok")
    save(failed.id, "django-task-failed")


def record_django_task_held(owner, temporal, save):
    """A tenant task enqueued while its tenant is suspended: held (its activity fails with
    ``TenantSuspended``, the run waits for ``tenant_reactivated``), then run after the
    tenant's reactivation."""
    from django_tenants.utils import schema_context

    from orchestration.models import TaskHold
    from tenants.models import SuspensionReason, TenantStatus
    from tenants.schemas.create import create_schema
    from tenants.services import tenant_reactivate, tenant_suspend
    from tests.factories import TenantFactory
    from tests.kit import wait_until
    from tests.tasks import sample_tasks
    from tests.workers import BackgroundWorker, finished

    tenant = TenantFactory(owner=owner, subdomain="held", status=TenantStatus.ACTIVE)
    create_schema(tenant.schema_name)
    tenant_suspend(tenant=tenant, reason=SuspensionReason.BILLING)
    with schema_context(tenant.schema_name):
        result = sample_tasks.add_project.enqueue("held")
    with BackgroundWorker(temporal, kinds=("tenant",)):
        wait_until(
            lambda: TaskHold.objects.filter(workflow_id=result.id).exists(),
            timeout=60,
            what=f"task {result.id} to be held",
        )
        tenant_reactivate(tenant=tenant)
        finished(result)
    save(result.id, "django-task-held")


def record_task_results_prune(temporal, settings, save):
    """A prune of two backends' results in batches of two: three stale results of one
    (two batches), none of the other."""
    from datetime import timedelta

    from django.utils import timezone

    from orchestration.models import TaskRecord
    from orchestration.routing import QueueKind, queue_name
    from orchestration.workflows import TaskResultsPruneInput, TaskResultsPruneWorkflow
    from tests.kit import run_async
    from tests.workers import BackgroundWorker

    long_ago = timezone.now() - timedelta(days=30)
    for n in range(3):
        TaskRecord.objects.create(
            id=f"task-recorded-{n}",
            task_path="tests.tasks.sample_tasks.add",
            status="SUCCESSFUL",
            finished_at=long_ago,
        )
    jobs = queue_name(prefix=settings.TEMPORAL_QUEUE_PREFIX, kind=QueueKind.JOBS)

    async def prune() -> str:
        client = await Client.connect(temporal)
        handle = await client.start_workflow(
            TaskResultsPruneWorkflow.run,
            TaskResultsPruneInput(
                retention_seconds={"default": 24 * 3600, "other": 24 * 3600}, batch_size=2
            ),
            id="task-results-prune-recorded",
            task_queue=jobs,
        )
        assert await handle.result() == 3
        return handle.id

    with BackgroundWorker(temporal, kinds=("jobs",)):
        workflow_id = run_async(prune())
    save(workflow_id, "task-results-prune")


def record_tenant_exports_prune(owner, temporal, settings, tmp_path, save):
    """A prune of tenant data exports in batches of two: three exports (files and rows)
    finished long ago, two batches."""
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from orchestration.routing import QueueKind, queue_name
    from orchestration.workflows import TenantExportsPruneInput, TenantExportsPruneWorkflow
    from tenants.exports import export_file_name
    from tenants.models import ExportStatus, TenantExport
    from tests.factories import TenantFactory
    from tests.kit import run_async
    from tests.workers import BackgroundWorker

    settings.MEDIA_ROOT = str(tmp_path / "media")
    tenant = TenantFactory(owner=owner, subdomain="exported")
    long_ago = timezone.now() - timedelta(days=30)
    for _ in range(3):
        export = TenantExport.objects.create(tenant=tenant, status=ExportStatus.READY)
        name = default_storage.save(export_file_name(export), ContentFile(b"zip"))
        TenantExport.objects.filter(pk=export.pk).update(file_name=name, finished_at=long_ago)
    jobs = queue_name(prefix=settings.TEMPORAL_QUEUE_PREFIX, kind=QueueKind.JOBS)

    async def prune() -> str:
        client = await Client.connect(temporal)
        handle = await client.start_workflow(
            TenantExportsPruneWorkflow.run,
            TenantExportsPruneInput(retention_seconds=24 * 3600, batch_size=2),
            id="tenant-exports-prune-recorded",
            task_queue=jobs,
        )
        assert await handle.result() == 3
        return handle.id

    with BackgroundWorker(temporal, kinds=("jobs",)):
        workflow_id = run_async(prune())
    save(workflow_id, "tenant-exports-prune")


def record_invitation_expired_and_accepted(owner, temporal, settings, save):
    """Two invitations to one tenant: one left alone (emailed, reminded once, expired, on
    timers of seconds); one emailed again on request (the ``resend`` signal), then accepted
    with a password (the ``accepted`` signal)."""
    from django.core import mail

    from orchestration.receivers import invitation_workflow_id
    from tenants.models import Role
    from tenants.services.people import invitation_accept, invitation_create, invitation_resend
    from tests.factories import PASSWORD, MembershipFactory, TenantFactory
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, workflow_result

    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    tenant = TenantFactory(owner=owner, subdomain="team")
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    settings.INVITATION_REMIND_AFTER, settings.INVITATION_TTL = 1, 3
    left = invitation_create(tenant_id=tenant.pk, actor=owner, email="left@example.com")
    settings.INVITATION_REMIND_AFTER, settings.INVITATION_TTL = 600, 1200
    kept = invitation_create(tenant_id=tenant.pk, actor=owner, email="kept@example.com")

    def emails_to(address: str) -> list:
        return [m for m in mail.outbox if m.to == [address]]

    with BackgroundWorker(temporal, kinds=("tenant",)):
        wait_until(lambda: emails_to(kept.email), timeout=30, what="the invitation email")
        invitation_resend(tenant_id=tenant.pk, actor=owner, invitation_id=kept.pk)
        wait_until(lambda: len(emails_to(kept.email)) == 2, timeout=30, what="the email again")
        link = emails_to(kept.email)[-1].body.split("#token=", 1)[1].split()[0]
        invitation_accept(raw_token=link, password=PASSWORD)
        assert run_async(workflow_result(temporal, invitation_workflow_id(kept.pk)))["state"] == (
            "accepted"
        )
        assert run_async(workflow_result(temporal, invitation_workflow_id(left.pk)))["state"] == (
            "expired"
        )
    save(invitation_workflow_id(left.pk), "invitation-expired")
    save(invitation_workflow_id(kept.pk), "invitation-accepted")


async def _closed(address: str, workflow_id: str) -> None:
    """Once the run has closed (a worker must still be running), within a minute."""
    client = await Client.connect(address)
    with contextlib.suppress(WorkflowFailureError):
        async with asyncio.timeout(60):
            await client.get_workflow_handle(workflow_id).result()


def _started(address: str, workflow_id: str) -> None:
    """Once the relay has started ``workflow_id``."""
    from tests.kit import wait_until
    from tests.workers import workflow_exists

    wait_until(lambda: workflow_exists(address, workflow_id), timeout=30, what=workflow_id)


def record_previous_domain_release(owner, temporal, settings, save):
    """A tenant's subdomain changed with a hold of two seconds: the run sleeps, then frees
    the old host."""
    from orchestration.receivers import previous_domain_release_workflow_id
    from tenants.models import Domain, TenantStatus
    from tenants.services.domains import domain_create_primary, tenant_change_subdomain
    from tests.factories import TenantFactory
    from tests.kit import run_async
    from tests.workers import BackgroundWorker

    settings.TENANT_OLD_DOMAIN_TTL = 2
    tenant = TenantFactory(owner=owner, subdomain="acme", status=TenantStatus.ACTIVE)
    previous = domain_create_primary(tenant_id=tenant.pk)
    tenant_change_subdomain(tenant_id=tenant.pk, subdomain="acme-labs")
    workflow_id = previous_domain_release_workflow_id(previous.pk)
    with BackgroundWorker(temporal):
        _started(temporal, workflow_id)
        run_async(_closed(temporal, workflow_id))
    assert not Domain.objects.filter(pk=previous.pk).exists()
    save(workflow_id, "previous-domain-release")


def record_tenant_move(active_tenant, temporal, settings, save):
    """A tenant moved to ``tenants2`` (its old schema dropped a second after the switch),
    and one whose copy fails verification, so that the copy is dropped and the hold ends."""
    from orchestration.activities import moves as steps
    from tenants.models import Tenant, move_workflow_id
    from tenants.services.moves import tenant_move_request
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, fail_instead

    settings.TENANT_MOVE_DROP_AFTER = 1
    moved, failing = active_tenant("acme"), active_tenant("broken")
    tenant_move_request(tenant=moved, to="tenants2")
    with BackgroundWorker(temporal):
        _started(temporal, move_workflow_id(moved.pk, 1))
        run_async(_closed(temporal, move_workflow_id(moved.pk, 1)))
    assert Tenant.objects.get(pk=moved.pk).database == "tenants2"
    save(move_workflow_id(moved.pk, 1), "tenant-move-ok")
    tenant_move_request(tenant=failing, to="tenants2")
    replace = {steps.tenant_move_verify.__name__: fail_instead(steps.tenant_move_verify)}
    with BackgroundWorker(temporal, replace=replace):
        wait_until(
            lambda: Tenant.objects.get(pk=failing.pk).last_error, timeout=60, what="the undo"
        )
        run_async(_closed(temporal, move_workflow_id(failing.pk, 1)))
    save(move_workflow_id(failing.pk, 1), "tenant-move-failed")


def record_custom_domain_verification(owner, temporal, settings, dns_server, save):
    """Two custom domains looked up every second: one whose TXT record is created after the
    first lookup (verified at the second), one never created (expired after three)."""
    from orchestration.receivers import custom_domain_verification_workflow_id
    from tenants.models import TenantStatus
    from tenants.services.domains import custom_domain_add, txt_record_name
    from tests.factories import TenantFactory
    from tests.kit import run_async, wait_until
    from tests.workers import BackgroundWorker, workflow_result

    settings.CUSTOM_DOMAIN_VERIFY_INTERVAL = 1
    settings.CUSTOM_DOMAIN_VERIFY_TIMEOUT = 3
    tenant = TenantFactory(owner=owner, subdomain="acme", status=TenantStatus.ACTIVE)
    found = custom_domain_add(tenant_id=tenant.pk, domain="shop.example.org")
    never = custom_domain_add(tenant_id=tenant.pk, domain="never.example.org")
    record = txt_record_name(found.domain)
    with BackgroundWorker(temporal):
        wait_until(lambda: dns_server.asked(record), timeout=30, what="the first lookup")
        dns_server.set_txt(record, found.token)
        _started(temporal, custom_domain_verification_workflow_id(never.pk))
        verified = run_async(
            workflow_result(temporal, custom_domain_verification_workflow_id(found.pk))
        )
        expired = run_async(
            workflow_result(temporal, custom_domain_verification_workflow_id(never.pk))
        )
    assert (verified["status"], expired["status"]) == ("verified", "expired"), (verified, expired)
    save(custom_domain_verification_workflow_id(found.pk), "custom-domain-verified")
    save(custom_domain_verification_workflow_id(never.pk), "custom-domain-expired")


def record_custom_domains_recheck(owner, temporal, settings, dns_server, save):
    """A re-check of two verified custom domains with no grace: one whose record is there
    (stays verified), one whose record is gone (warned, then stopped)."""
    from orchestration.routing import QueueKind, queue_name
    from orchestration.workflows import CustomDomainsRecheckInput, CustomDomainsRecheckWorkflow
    from tenants.models import CustomDomainStatus, Domain, TenantStatus
    from tenants.services.domains import custom_domain_add, txt_record_name
    from tests.factories import TenantFactory
    from tests.kit import run_async
    from tests.workers import BackgroundWorker

    tenant = TenantFactory(owner=owner, subdomain="acme", status=TenantStatus.ACTIVE)
    kept = custom_domain_add(tenant_id=tenant.pk, domain="shop.example.org")
    lost = custom_domain_add(tenant_id=tenant.pk, domain="lost.example.org")
    Domain.objects.filter(pk__in=[kept.pk, lost.pk]).update(status=CustomDomainStatus.VERIFIED)
    dns_server.set_txt(txt_record_name(kept.domain), kept.token)
    jobs = queue_name(prefix=settings.TEMPORAL_QUEUE_PREFIX, kind=QueueKind.JOBS)

    async def recheck() -> str:
        client = await Client.connect(temporal)
        handle = await client.start_workflow(
            CustomDomainsRecheckWorkflow.run,
            CustomDomainsRecheckInput(grace_seconds=0),
            id="custom-domains-recheck-recorded",
            task_queue=jobs,
        )
        assert await handle.result() == {"verified": 1, "stopped": 1}
        return handle.id

    with BackgroundWorker(temporal, kinds=("jobs",)):
        workflow_id = run_async(recheck())
    save(workflow_id, "custom-domains-recheck")


# --- the command -----------------------------------------------------------------------------


class Destination:
    """A pytest plugin: the ``save`` fixture writes a run's history as
    ``<out>/<name>-<label>.json``."""

    def __init__(self, label: str, out: Path):
        self.label, self.out = label, out

    @pytest.fixture
    def save(self, temporal):
        from tests.kit import run_async
        from tests.workers import workflow_history_json

        def save(workflow_id: str, name: str) -> None:
            path = self.out / f"{name}-{self.label}.json"
            path.write_text(run_async(workflow_history_json(temporal, workflow_id)))
            print(f"wrote {path}")

        return save


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.record_histories", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--label", required=True, help="suffix of the files, e.g. v4")
    parser.add_argument("--out", type=Path, default=HISTORIES, help=f"default {HISTORIES}")
    parser.add_argument("-k", dest="only", help="record only scenarios matching (pytest -k)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    pytest_args = [
        __file__,
        "-q",
        "-s",
        "-p",
        "no:cacheprovider",
        "-o",
        "python_functions=record_*",
    ]
    if args.only:
        pytest_args += ["-k", args.only]
    return pytest.main(pytest_args, plugins=[Destination(args.label, args.out.resolve())])


if __name__ == "__main__":
    sys.exit(main())
