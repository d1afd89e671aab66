"""Which workflows and activities the workers of each queue kind host.

The project's own come from ``orchestration.workflows`` and ``orchestration.activities``;
``TEMPORAL_WORKER_EXTENSIONS`` names further modules, each with a ``REGISTRY`` of the same
shape, for workflows a deployment adds to the same workers.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

from orchestration.routing import QueueKind


@dataclass(frozen=True)
class Hosted:
    workflows: tuple = field(default_factory=tuple)
    activities: tuple = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.workflows or self.activities)

    def __add__(self, other: "Hosted") -> "Hosted":
        return Hosted(self.workflows + other.workflows, self.activities + other.activities)


def project_registry() -> dict[QueueKind, Hosted]:
    """The project's own workflows and activities, by queue kind (imported on demand: the
    workflow modules import activity modules, which need Django set up)."""
    from orchestration.activities import accounts as account_activities
    from orchestration.activities import deletion as deletion_activities
    from orchestration.activities import domains as domain_activities
    from orchestration.activities import exports as export_activities
    from orchestration.activities import fleet as fleet_activities
    from orchestration.activities import people as people_activities
    from orchestration.activities import pool as pool_activities
    from orchestration.activities import tasks as task_activities
    from orchestration.workflows import (
        AccountEmailWorkflow,
        CustomDomainsRecheckWorkflow,
        CustomDomainVerificationWorkflow,
        DjangoTaskWorkflow,
        FleetMigrationWorkflow,
        PreviousDomainReleaseWorkflow,
        SchemaPoolRefillWorkflow,
        TaskResultsPruneWorkflow,
        TenantDeletionGraceWorkflow,
        TenantDeletionWorkflow,
        TenantExportsPruneWorkflow,
        TenantInvitationWorkflow,
        TenantMoveWorkflow,
        TenantProvisioningWorkflow,
        TokenCleanupWorkflow,
        UserOnboardingWorkflow,
        VerificationEmailWorkflow,
    )
    from orchestration.workflows.tenant_deletion import DELETION
    from orchestration.workflows.tenant_move import ACTIVITIES as MOVE_ACTIVITIES
    from orchestration.workflows.tenant_provisioning import PROVISIONING

    onboarding = Hosted(
        workflows=(UserOnboardingWorkflow,), activities=tuple(account_activities.ONBOARDING)
    )
    # django.tasks tasks (orchestration.tasks): a tenant's on its shard, the others on jobs.
    tasks = Hosted(workflows=(DjangoTaskWorkflow,), activities=tuple(task_activities.ACTIVITIES))
    return {
        # Onboarding runs on the tenant's route (the user belongs to the tenant made at
        # signup). The jobs workers keep hosting it so that runs started there before the
        # move still finish; see docs/operations.md.
        QueueKind.TENANT: Hosted(
            workflows=(
                TenantProvisioningWorkflow,
                TenantDeletionWorkflow,
                TenantDeletionGraceWorkflow,
                PreviousDomainReleaseWorkflow,
                CustomDomainVerificationWorkflow,
                TenantMoveWorkflow,
            ),
            activities=tuple(dict.fromkeys(PROVISIONING.activities + DELETION.activities))
            + tuple(fleet_activities.ON_TENANT_QUEUES + deletion_activities.GRACE)
            + tuple(domain_activities.ON_TENANT_QUEUES)
            + tuple(MOVE_ACTIVITIES),
        )
        # An invitation runs on its tenant's route.
        + Hosted(
            workflows=(TenantInvitationWorkflow,), activities=tuple(people_activities.INVITATION)
        )
        + onboarding
        + tasks,
        QueueKind.JOBS: Hosted(
            workflows=(
                TokenCleanupWorkflow,
                VerificationEmailWorkflow,
                AccountEmailWorkflow,
                FleetMigrationWorkflow,
                SchemaPoolRefillWorkflow,
                TaskResultsPruneWorkflow,
                TenantExportsPruneWorkflow,
                CustomDomainsRecheckWorkflow,
            ),
            activities=tuple(
                account_activities.CLEANUP
                + account_activities.EMAILS
                + pool_activities.REFILL
                + task_activities.PRUNE
                + export_activities.PRUNE
                + domain_activities.RECHECK
            )
            + tuple(fleet_activities.ON_JOBS_QUEUE),
        )
        + onboarding
        + tasks,
    }


def hosted(kind: QueueKind) -> Hosted:
    """The project's registrations for ``kind`` plus those of the configured extensions."""
    result = project_registry().get(kind, Hosted())
    for path in getattr(settings, "TEMPORAL_WORKER_EXTENSIONS", []):
        extension = import_string(f"{path}.REGISTRY")
        result = result + extension.get(kind, Hosted())
    return result
