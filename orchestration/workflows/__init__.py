"""Every workflow of the project, one module each (re-exported here, imported on first use).

The re-exports are lazy (PEP 562): Temporal's sandbox imports a workflow's module afresh for
each new run, parent package included, and an ``__init__`` that imported every workflow
module made each run of each workflow pay for all of them.
"""

import importlib

_MODULES = {
    "CustomDomainVerificationInput": "custom_domain_verification",
    "CustomDomainVerificationWorkflow": "custom_domain_verification",
    "CustomDomainsRecheckInput": "custom_domains_recheck",
    "CustomDomainsRecheckWorkflow": "custom_domains_recheck",
    "AccountEmailInput": "account_email",
    "AccountEmailWorkflow": "account_email",
    "DjangoTaskInput": "django_task",
    "DjangoTaskWorkflow": "django_task",
    "FleetMigrationInput": "fleet_migration",
    "FleetMigrationWorkflow": "fleet_migration",
    "PreviousDomainReleaseInput": "previous_domain_release",
    "PreviousDomainReleaseWorkflow": "previous_domain_release",
    "SchemaPoolRefillInput": "schema_pool",
    "SchemaPoolRefillWorkflow": "schema_pool",
    "TaskResultsPruneInput": "task_results_prune",
    "TaskResultsPruneWorkflow": "task_results_prune",
    "TenantDeletionGraceInput": "tenant_deletion_grace",
    "TenantDeletionGraceWorkflow": "tenant_deletion_grace",
    "TenantDeletionInput": "tenant_deletion",
    "TenantDeletionWorkflow": "tenant_deletion",
    "TenantExportsPruneInput": "tenant_exports_prune",
    "TenantExportsPruneWorkflow": "tenant_exports_prune",
    "TenantInvitationInput": "tenant_invitation",
    "TenantInvitationWorkflow": "tenant_invitation",
    "TenantMoveInput": "tenant_move",
    "TenantMoveWorkflow": "tenant_move",
    "TenantProvisioningInput": "tenant_provisioning",
    "TenantProvisioningWorkflow": "tenant_provisioning",
    "TokenCleanupInput": "token_cleanup",
    "TokenCleanupWorkflow": "token_cleanup",
    "UserOnboardingInput": "user_onboarding",
    "UserOnboardingWorkflow": "user_onboarding",
    "VerificationEmailInput": "verification_email",
    "VerificationEmailWorkflow": "verification_email",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)


def __dir__() -> list[str]:
    return __all__
