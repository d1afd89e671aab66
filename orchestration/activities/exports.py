"""Tenant data exports' retention: the activity behind ``TenantExportsPruneWorkflow``."""

from datetime import timedelta

from orchestration.activities import django_activity
from tenants import exports


@django_activity
def exports_delete_stale(retention_seconds: int, batch_size: int) -> int:
    """Deletes one batch of exports finished more than ``retention_seconds`` ago, files and
    rows; the workflow calls it until it deletes fewer than ``batch_size``. Idempotent."""
    return exports.tenant_exports_delete_stale(
        retention=timedelta(seconds=retention_seconds), batch_size=batch_size
    )


PRUNE = [exports_delete_stale]
