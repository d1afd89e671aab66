"""Signals sent by ``tenants.services``, always inside the service's transaction.

Receivers run in that transaction too: whatever they write commits or rolls back with the
change. ``orchestration.receivers`` is the only listener; it records workflow starts.

``tenant_provisioning_requested``
    sender: ``Tenant``; ``tenant``: the Tenant; ``attempt``: 1 for the first provisioning,
    n for the n-th (a retry after failure).
``tenant_deletion_requested``
    sender: ``Tenant``; ``tenant``: the Tenant, already marked ``deleting``.
"""

from django.dispatch import Signal

tenant_provisioning_requested = Signal()
tenant_deletion_requested = Signal()
