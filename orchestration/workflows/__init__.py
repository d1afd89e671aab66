"""Every workflow of the project, one module each (re-exported here)."""

from orchestration.workflows.tenant_deletion import TenantDeletionInput, TenantDeletionWorkflow
from orchestration.workflows.tenant_provisioning import (
    TenantProvisioningInput,
    TenantProvisioningWorkflow,
)

__all__ = [
    "TenantDeletionInput",
    "TenantDeletionWorkflow",
    "TenantProvisioningInput",
    "TenantProvisioningWorkflow",
]
