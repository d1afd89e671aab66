"""Turn the apps' lifecycle signals into outbox rows (workflow starts after commit).

Connected in ``OrchestrationConfig.ready()``. Each receiver runs inside the sender's
transaction, so a rolled-back change starts nothing. Each builds the workflow's input
dataclass, which validates itself before the row is written (a bad value raises here, in
the caller's transaction, and nothing is written). Workflow ids are deterministic and carry
only UUIDs, never an email or a name.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from accounts.signals import (
    email_change_requested,
    email_verified,
    password_reset_requested,
    verification_email_requested,
)
from orchestration import metrics
from orchestration.models import IdReusePolicy
from orchestration.outbox import enqueue_signal, enqueue_start
from orchestration.routing import Workload, deployment_system_route, deployment_tenant_route
from orchestration.task_holds import release_held
from orchestration.workflows.account_email import AccountEmailInput, AccountEmailWorkflow
from orchestration.workflows.custom_domain_verification import (
    CustomDomainVerificationInput,
    CustomDomainVerificationWorkflow,
)
from orchestration.workflows.fleet_migration import FleetMigrationInput, FleetMigrationWorkflow
from orchestration.workflows.previous_domain_release import (
    PreviousDomainReleaseInput,
    PreviousDomainReleaseWorkflow,
)
from orchestration.workflows.schema_pool import SchemaPoolRefillInput, SchemaPoolRefillWorkflow
from orchestration.workflows.tenant_deletion import (
    DELETION,
    TenantDeletionInput,
    TenantDeletionWorkflow,
)
from orchestration.workflows.tenant_deletion_grace import (
    TenantDeletionGraceInput,
    TenantDeletionGraceWorkflow,
)
from orchestration.workflows.tenant_invitation import (
    TenantInvitationInput,
    TenantInvitationWorkflow,
)
from orchestration.workflows.tenant_move import MOVE, TenantMoveInput, TenantMoveWorkflow
from orchestration.workflows.tenant_provisioning import (
    PROVISIONING,
    TenantProvisioningInput,
    TenantProvisioningWorkflow,
)
from orchestration.workflows.user_onboarding import UserOnboardingInput, UserOnboardingWorkflow
from orchestration.workflows.verification_email import (
    VerificationEmailInput,
    VerificationEmailWorkflow,
)
from tenants.models import TenantStatus, deletion_grace_workflow_id, move_workflow_id
from tenants.services import tenant_run_planned
from tenants.signals import (
    custom_domain_added,
    fleet_run_control_requested,
    fleet_run_requested,
    invitation_closed,
    invitation_created,
    invitation_resend_requested,
    schema_pool_drawn,
    signed_up,
    tenant_deletion_requested,
    tenant_deletion_scheduled,
    tenant_move_requested,
    tenant_provisioning_requested,
    tenant_reactivated,
    tenant_restored,
    tenant_subdomain_changed,
)


def provisioning_workflow_id(tenant_id, attempt: int) -> str:
    base = f"tenant-provision-{tenant_id}"
    return base if attempt == 1 else f"{base}-attempt-{attempt}"


def deletion_workflow_id(tenant_id) -> str:
    return f"tenant-delete-{tenant_id}"


def onboarding_workflow_id(user_id) -> str:
    return f"user-onboarding-{user_id}"


def invitation_workflow_id(invitation_id) -> str:
    return f"tenant-invitation-{invitation_id}"


def on_tenant_provisioning_requested(sender, *, tenant, attempt: int, **kwargs) -> None:
    workflow_id = provisioning_workflow_id(tenant.pk, attempt)
    enqueue_start(
        TenantProvisioningWorkflow,
        TenantProvisioningInput(
            tenant_id=str(tenant.pk),
            attempt=attempt,
            retry_window_seconds=settings.STEP_RETRY_WINDOW,
        ),
        workflow_id=workflow_id,
        route=deployment_tenant_route(tenant.pk, workload=Workload.INTERACTIVE),
        # Asking again for a pending tenant whose run ended without marking it (terminated
        # by hand, say) starts that attempt again; a run still going is not doubled, and a
        # completed one is not repeated.
        id_reuse_policy=IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    )
    tenant_run_planned(tenant_id=tenant.pk, workflow_id=workflow_id, steps=PROVISIONING.step_names)


def on_tenant_deletion_requested(sender, *, tenant, scheduling: int = 0, **kwargs) -> None:
    workflow_id = deletion_workflow_id(tenant.pk)
    provisioning = ""
    if tenant.status == TenantStatus.PROVISIONING:  # stop that run first
        provisioning = provisioning_workflow_id(tenant.pk, tenant.provisioning_attempt)
    enqueue_start(
        TenantDeletionWorkflow,
        TenantDeletionInput(
            tenant_id=str(tenant.pk),
            provisioning_workflow_id=provisioning,
            retry_window_seconds=settings.STEP_RETRY_WINDOW,
        ),
        workflow_id=workflow_id,
        route=deployment_tenant_route(tenant.pk, workload=Workload.BACKGROUND),
        # A deletion that failed may be requested again and must then run again.
        id_reuse_policy=IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    )
    tenant_run_planned(tenant_id=tenant.pk, workflow_id=workflow_id, steps=DELETION.step_names)
    # Tasks held while it was suspended (or scheduled) run again now, and end at once: it
    # is deleting.
    release_held(tenant_id=tenant.pk)
    if scheduling:  # purged at once: the scheduled deletion's run has nothing left to wait for
        enqueue_signal(
            workflow_id=deletion_grace_workflow_id(tenant.pk, scheduling), signal=END_GRACE
        )


def on_tenant_move_requested(sender, *, tenant, number: int, **kwargs) -> None:
    workflow_id = move_workflow_id(tenant.pk, number)
    enqueue_start(
        TenantMoveWorkflow,
        TenantMoveInput(
            tenant_id=str(tenant.pk), number=number, retry_window_seconds=settings.STEP_RETRY_WINDOW
        ),
        workflow_id=workflow_id,
        route=deployment_tenant_route(tenant.pk, workload=Workload.BACKGROUND),
    )
    tenant_run_planned(tenant_id=tenant.pk, workflow_id=workflow_id, steps=MOVE.step_names)


# The signal that ends a grace run early (TenantDeletionGraceWorkflow's handler).
END_GRACE = "end_grace"


def on_tenant_deletion_scheduled(sender, *, tenant, notify: bool, **kwargs) -> None:
    remind_at = tenant.deletion_remind_at
    enqueue_start(
        TenantDeletionGraceWorkflow,
        TenantDeletionGraceInput(
            tenant_id=str(tenant.pk),
            scheduling=tenant.deletion_scheduling,
            purge_at=tenant.purge_at.isoformat(),
            remind_at=remind_at.isoformat() if remind_at else "",
            notify=notify,
            retry_window_seconds=settings.STEP_RETRY_WINDOW,
        ),
        workflow_id=deletion_grace_workflow_id(tenant.pk, tenant.deletion_scheduling),
        route=deployment_tenant_route(tenant.pk, workload=Workload.BACKGROUND),
    )


def on_tenant_restored(sender, *, tenant, scheduling: int, **kwargs) -> None:
    # Ends the waiting run early; were the signal lost, its purge would still find the
    # tenant restored and do nothing.
    enqueue_signal(workflow_id=deletion_grace_workflow_id(tenant.pk, scheduling), signal=END_GRACE)
    if tenant.status == TenantStatus.ACTIVE:  # a suspended one's tasks keep waiting
        release_held(tenant_id=tenant.pk)


def on_tenant_reactivated(sender, *, tenant, **kwargs) -> None:
    # Its tasks held while it was suspended: a signal each, after commit. A suspension needs
    # no listener: each task finds it when it runs (orchestration.task_holds).
    release_held(tenant_id=tenant.pk)


def previous_domain_release_workflow_id(domain_id: int) -> str:
    return f"previous-domain-release-{domain_id}"


def custom_domain_verification_workflow_id(domain_id: int) -> str:
    return f"custom-domain-verification-{domain_id}"


def on_tenant_subdomain_changed(sender, *, tenant, previous, **kwargs) -> None:
    # One run per previous host, named by its row (a row becomes previous once: a host the
    # tenant takes back gets a new row), so a repeated start is not a second run.
    for domain in previous:
        enqueue_start(
            PreviousDomainReleaseWorkflow,
            PreviousDomainReleaseInput(
                domain_id=domain.pk,
                hold_seconds=settings.TENANT_OLD_DOMAIN_TTL,
                retry_window_seconds=settings.STEP_RETRY_WINDOW,
            ),
            workflow_id=previous_domain_release_workflow_id(domain.pk),
            route=deployment_tenant_route(tenant.pk, workload=Workload.BACKGROUND),
        )


def on_custom_domain_added(sender, *, domain, **kwargs) -> None:
    enqueue_start(
        CustomDomainVerificationWorkflow,
        CustomDomainVerificationInput(
            domain_id=domain.pk,
            first_interval_seconds=settings.CUSTOM_DOMAIN_VERIFY_INTERVAL,
            max_interval_seconds=max(3600, settings.CUSTOM_DOMAIN_VERIFY_INTERVAL),
            timeout_seconds=settings.CUSTOM_DOMAIN_VERIFY_TIMEOUT,
            retry_window_seconds=settings.STEP_RETRY_WINDOW,
        ),
        workflow_id=custom_domain_verification_workflow_id(domain.pk),
        route=deployment_tenant_route(domain.tenant_id, workload=Workload.INTERACTIVE),
    )


def on_signed_up(sender, *, tenant, user, verification_token, **kwargs) -> None:
    # The user belongs to the tenant made at signup: onboarding shares its route (its shard,
    # with the tenant as fairness key).
    enqueue_start(
        UserOnboardingWorkflow,
        UserOnboardingInput(
            user_id=str(user.pk),
            verification_token_id=verification_token.pk,
            remind_after_seconds=settings.ONBOARDING_REMIND_AFTER,
            expire_after_seconds=settings.ONBOARDING_EXPIRE_AFTER,
            suspend_after_seconds=settings.ONBOARDING_SUSPEND_AFTER,
            delete_after_seconds=settings.ONBOARDING_DELETE_AFTER,
            retry_window_seconds=settings.STEP_RETRY_WINDOW,
        ),
        workflow_id=onboarding_workflow_id(user.pk),
        route=deployment_tenant_route(tenant.pk, workload=Workload.INTERACTIVE),
    )


def on_verification_email_requested(sender, *, user, verification_token, **kwargs) -> None:
    # Each request is its own run (a fresh id: asking again sends again); the throttle on
    # the endpoint bounds how often.
    enqueue_start(
        VerificationEmailWorkflow,
        VerificationEmailInput(
            verification_token_id=verification_token.pk,
            retry_window_seconds=settings.STEP_RETRY_WINDOW,
        ),
        workflow_id=f"verification-email-{verification_token.pk}-{uuid.uuid4().hex[:12]}",
        route=deployment_system_route(workload=Workload.INTERACTIVE),
    )


def account_email_workflow_id(token_id: int) -> str:
    return f"account-email-{token_id}"


def _start_account_email(kind: str, token_id: int) -> None:
    # One run per token (each request issues a new one); ids only: the addresses and the
    # token's value are read by the activity.
    enqueue_start(
        AccountEmailWorkflow,
        AccountEmailInput(
            kind=kind, token_id=token_id, retry_window_seconds=settings.STEP_RETRY_WINDOW
        ),
        workflow_id=account_email_workflow_id(token_id),
        route=deployment_system_route(workload=Workload.INTERACTIVE),
    )


def on_password_reset_requested(sender, *, user, token, **kwargs) -> None:
    _start_account_email("password_reset", token.pk)


def on_email_change_requested(sender, *, user, email_change, **kwargs) -> None:
    # The confirmation to the new address, then the notice to the old one, in one run.
    _start_account_email("email_change", email_change.token_id)


def on_email_verified(sender, *, user, **kwargs) -> None:
    # Through the outbox, like starts: delivered after commit, retried while Temporal is
    # down, and never sent for a verification that rolled back.
    enqueue_signal(workflow_id=onboarding_workflow_id(user.pk), signal="email_verified")
    transaction.on_commit(lambda: metrics.onboarding_outcome("verified"))


def on_invitation_created(sender, *, invitation, **kwargs) -> None:
    # The invitation's id only: its address and its link's secret stay in the database.
    enqueue_start(
        TenantInvitationWorkflow,
        TenantInvitationInput(
            invitation_id=str(invitation.pk),
            remind_after_seconds=settings.INVITATION_REMIND_AFTER,
            expire_after_seconds=settings.INVITATION_TTL,
            retry_window_seconds=settings.STEP_RETRY_WINDOW,
        ),
        workflow_id=invitation_workflow_id(invitation.pk),
        route=deployment_tenant_route(invitation.tenant_id, workload=Workload.INTERACTIVE),
    )


def on_invitation_closed(sender, *, invitation, outcome: str, **kwargs) -> None:
    # "accepted" or "revoked": the signal of that name ends the run.
    enqueue_signal(workflow_id=invitation_workflow_id(invitation.pk), signal=outcome)


def on_invitation_resend_requested(sender, *, invitation, **kwargs) -> None:
    enqueue_signal(workflow_id=invitation_workflow_id(invitation.pk), signal="resend")


def on_fleet_run_requested(sender, *, run, **kwargs) -> None:
    # One run per id: a second request for the same deploy's run is not a second run (and a
    # retry attempt has its own id).
    enqueue_start(
        FleetMigrationWorkflow,
        FleetMigrationInput(
            run_id=run.pk,
            concurrency=run.concurrency,
            batch_size=settings.FLEET_MIGRATION_BATCH_SIZE,
            continue_after=settings.FLEET_MIGRATION_CONTINUE_AFTER,
        ),
        workflow_id=run.workflow_id,
        route=deployment_system_route(workload=Workload.BACKGROUND),
    )


def on_fleet_run_control_requested(sender, *, run, action: str, **kwargs) -> None:
    enqueue_signal(workflow_id=run.workflow_id, signal=action)


# A provisioning that claimed from the pool is done within this; its refill waits for it
# (building a schema costs the database as much as the rest of the provisioning).
REFILL_DELAY = timedelta(seconds=2)


def on_schema_pool_drawn(sender, **kwargs) -> None:
    # A refill per claim, each its own run (a fresh id); overlapping ones share the work
    # through the pool's advisory lock. Written in the claim's transaction: a claim that
    # rolled back kicks nothing.
    # Held in the outbox for a moment: the provisioning that claimed finishes first, with no
    # refill being started (nor building) beside it.
    enqueue_start(
        SchemaPoolRefillWorkflow,
        SchemaPoolRefillInput(),
        workflow_id=f"schema-pool-refill-{uuid.uuid4().hex[:12]}",
        route=deployment_system_route(),
        hold=REFILL_DELAY,
    )


def connect() -> None:
    for signal, receiver in (
        (tenant_provisioning_requested, on_tenant_provisioning_requested),
        (tenant_deletion_requested, on_tenant_deletion_requested),
        (tenant_reactivated, on_tenant_reactivated),
        (tenant_move_requested, on_tenant_move_requested),
        (tenant_deletion_scheduled, on_tenant_deletion_scheduled),
        (tenant_restored, on_tenant_restored),
        (tenant_subdomain_changed, on_tenant_subdomain_changed),
        (custom_domain_added, on_custom_domain_added),
        (signed_up, on_signed_up),
        (email_verified, on_email_verified),
        (verification_email_requested, on_verification_email_requested),
        (password_reset_requested, on_password_reset_requested),
        (email_change_requested, on_email_change_requested),
        (invitation_created, on_invitation_created),
        (invitation_closed, on_invitation_closed),
        (invitation_resend_requested, on_invitation_resend_requested),
        (fleet_run_requested, on_fleet_run_requested),
        (fleet_run_control_requested, on_fleet_run_control_requested),
        (schema_pool_drawn, on_schema_pool_drawn),
    ):
        signal.connect(receiver, dispatch_uid=f"orchestration.receivers.{receiver.__name__}")
