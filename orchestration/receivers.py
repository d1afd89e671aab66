"""Turn the apps' lifecycle signals into outbox rows (workflow starts after commit).

Connected in ``OrchestrationConfig.ready()``. Each receiver runs inside the sender's
transaction, so a rolled-back change starts nothing. Workflow ids are deterministic and
carry only UUIDs, never an email or a name.
"""

from django.conf import settings

from accounts.signals import email_verified, user_registered
from orchestration.models import IdReusePolicy
from orchestration.outbox import enqueue_signal, enqueue_start
from orchestration.routing import Workload, deployment_system_route, deployment_tenant_route
from tenants.signals import tenant_deletion_requested, tenant_provisioning_requested

# Workflow type names, as registered on the workers (the class names).
TENANT_PROVISIONING = "TenantProvisioningWorkflow"
TENANT_DELETION = "TenantDeletionWorkflow"
USER_ONBOARDING = "UserOnboardingWorkflow"


def provisioning_workflow_id(tenant_id, attempt: int) -> str:
    base = f"tenant-provision-{tenant_id}"
    return base if attempt == 1 else f"{base}-attempt-{attempt}"


def on_tenant_provisioning_requested(sender, *, tenant, attempt: int, **kwargs) -> None:
    enqueue_start(
        workflow_type=TENANT_PROVISIONING,
        workflow_id=provisioning_workflow_id(tenant.pk, attempt),
        arguments={"tenant_id": str(tenant.pk), "attempt": attempt},
        route=deployment_tenant_route(tenant.pk, workload=Workload.INTERACTIVE),
        namespace=settings.TEMPORAL_NAMESPACE,
    )


def on_tenant_deletion_requested(sender, *, tenant, **kwargs) -> None:
    enqueue_start(
        workflow_type=TENANT_DELETION,
        workflow_id=f"tenant-delete-{tenant.pk}",
        arguments={"tenant_id": str(tenant.pk)},
        route=deployment_tenant_route(tenant.pk, workload=Workload.BACKGROUND),
        namespace=settings.TEMPORAL_NAMESPACE,
        # A deletion that failed may be requested again and must then run again.
        id_reuse_policy=IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    )


def onboarding_workflow_id(user_id) -> str:
    return f"user-onboarding-{user_id}"


def on_user_registered(sender, *, user, verification_token, **kwargs) -> None:
    enqueue_start(
        workflow_type=USER_ONBOARDING,
        workflow_id=onboarding_workflow_id(user.pk),
        arguments={
            "user_id": str(user.pk),
            "verification_token_id": verification_token.pk,
            "remind_after_seconds": settings.ONBOARDING_REMIND_AFTER,
            "expire_after_seconds": settings.ONBOARDING_EXPIRE_AFTER,
        },
        route=deployment_system_route(workload=Workload.INTERACTIVE),
        namespace=settings.TEMPORAL_NAMESPACE,
    )


def on_email_verified(sender, *, user, **kwargs) -> None:
    # Through the outbox, like starts: delivered after commit, retried while Temporal is
    # down, and never sent for a verification that rolled back.
    enqueue_signal(
        workflow_id=onboarding_workflow_id(user.pk),
        signal="email_verified",
        namespace=settings.TEMPORAL_NAMESPACE,
    )


def connect() -> None:
    uid = "orchestration.receivers"
    tenant_provisioning_requested.connect(
        on_tenant_provisioning_requested, dispatch_uid=f"{uid}.provisioning"
    )
    tenant_deletion_requested.connect(on_tenant_deletion_requested, dispatch_uid=f"{uid}.deletion")
    user_registered.connect(on_user_registered, dispatch_uid=f"{uid}.user_registered")
    email_verified.connect(on_email_verified, dispatch_uid=f"{uid}.email_verified")
