"""Signals sent by ``tenants.services``, always inside the service's transaction.

Receivers run in that transaction too: whatever they write commits or rolls back with the
change. The project's own listeners record workflow starts (see docs/architecture.md).

``tenant_provisioning_requested``
    sender: ``Tenant``; ``tenant``: the Tenant; ``attempt``: 1 for the first provisioning,
    n for the n-th (a retry after failure).
``tenant_deletion_requested``
    sender: ``Tenant``; ``tenant``: the Tenant, already marked ``deleting``.
``tenant_suspended``
    sender: ``Tenant``; ``tenant``: the Tenant, already ``suspended`` (``suspension_reason``
    and ``suspended_at`` set); ``reason``: the ``SuspensionReason`` value; ``actor``: the
    User who asked, or None (a command, a billing system). A billing integration may listen
    to it, or send it only through ``tenants.services.tenant_suspend``.
``tenant_reactivated``
    sender: ``Tenant``; ``tenant``: the Tenant, ``active`` again (reason cleared);
    ``reason``: the reason it was suspended for; ``actor``: as above. The tenant's
    ``django.tasks`` tasks held while it was suspended are released by the project's own
    listener, in this transaction.
``signed_up``
    sender: ``Tenant``; ``tenant``: the new (``pending``) Tenant; ``user``: its owner, a new
    User whose email is not verified yet; ``verification_token``: the email-verification
    Token to send them (its raw value is recomputed by ``accounts.services.token_raw_value``).
    Sent after ``tenant_provisioning_requested``, in the same transaction.
``invitation_created``
    sender: ``Invitation``; ``invitation``: a new ``pending`` Invitation. Its workflow emails
    the link (its secret recomputed from the stored nonce), reminds once, and expires it.
``invitation_closed``
    sender: ``Invitation``; ``invitation``: an Invitation that just left ``pending``;
    ``outcome``: ``"accepted"`` or ``"revoked"`` (an expiry is its workflow's own doing and
    sends nothing).
``invitation_resend_requested``
    sender: ``Invitation``; ``invitation``: a ``pending`` Invitation whose email is to go
    out again (its per-recipient quota already counted).
``fleet_run_requested``
    sender: ``FleetRun``; ``run``: the FleetRun to (re)start: a new run (``attempt`` 1), or
    a "retry failed" attempt over its failures (``run.retry_failed``), under
    ``run.workflow_id``.
``fleet_run_control_requested``
    sender: ``FleetRun``; ``run``: an open FleetRun, its status already changed;
    ``action``: ``"pause"``, ``"resume"`` or ``"cancel"``.
``schema_pool_drawn``
    sender: ``PoolSchema``; ``claimed``: the name of the pool schema a provisioning took
    (already renamed), or None when the pool had no current one; ``schema_name``: the
    tenant schema it was for. Sent by ``tenants.pool.claim`` whenever a pool is configured:
    the pool is one short (or empty) and wants refilling.
"""

from django.dispatch import Signal

tenant_provisioning_requested = Signal()
tenant_deletion_requested = Signal()
tenant_suspended = Signal()
tenant_reactivated = Signal()
signed_up = Signal()
invitation_created = Signal()
invitation_closed = Signal()
invitation_resend_requested = Signal()
fleet_run_requested = Signal()
fleet_run_control_requested = Signal()
schema_pool_drawn = Signal()
