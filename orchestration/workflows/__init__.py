"""Every workflow of the project, one module each (re-exported here)."""

from orchestration.workflows.django_task import DjangoTaskInput, DjangoTaskWorkflow
from orchestration.workflows.fleet_migration import FleetMigrationInput, FleetMigrationWorkflow
from orchestration.workflows.schema_pool import SchemaPoolRefillInput, SchemaPoolRefillWorkflow
from orchestration.workflows.tenant_deletion import TenantDeletionInput, TenantDeletionWorkflow
from orchestration.workflows.tenant_provisioning import (
    TenantProvisioningInput,
    TenantProvisioningWorkflow,
)
from orchestration.workflows.token_cleanup import TokenCleanupInput, TokenCleanupWorkflow
from orchestration.workflows.user_onboarding import UserOnboardingInput, UserOnboardingWorkflow
from orchestration.workflows.verification_email import (
    VerificationEmailInput,
    VerificationEmailWorkflow,
)

__all__ = [
    "DjangoTaskInput",
    "DjangoTaskWorkflow",
    "FleetMigrationInput",
    "FleetMigrationWorkflow",
    "SchemaPoolRefillInput",
    "SchemaPoolRefillWorkflow",
    "TenantDeletionInput",
    "TenantDeletionWorkflow",
    "TenantProvisioningInput",
    "TenantProvisioningWorkflow",
    "TokenCleanupInput",
    "TokenCleanupWorkflow",
    "UserOnboardingInput",
    "UserOnboardingWorkflow",
    "VerificationEmailInput",
    "VerificationEmailWorkflow",
]
