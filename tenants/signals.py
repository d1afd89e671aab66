"""Signals sent by ``tenants.services``, always inside the service's transaction.

Receivers run in that transaction too: whatever they write commits or rolls back with the
change. The project's own listeners record workflow starts (see docs/architecture.md).

``tenant_provisioning_requested``
    sender: ``Tenant``; ``tenant``: the Tenant; ``attempt``: 1 for the first provisioning,
    n for the n-th (a retry after failure).
``tenant_deletion_requested``
    sender: ``Tenant``; ``tenant``: the Tenant, already marked ``deleting`` (or still
    ``provisioning``: the deletion stops that run first); ``scheduling``: the number of the
    scheduled deletion this purge cuts short (an operator's purge-now), else 0.
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
``tenant_move_requested``
    sender: ``Tenant``; ``tenant``: the Tenant, ``move_to`` set; ``to``: the database alias
    its schema goes to; ``number``: the move's number (``Tenant.moves``); ``actor``: the
    User who asked, or None (a command). The project's listener starts the move run.
``tenant_deletion_scheduled``
    sender: ``Tenant``; ``tenant``: the Tenant, already ``deletion_scheduled`` (``purge_at``,
    ``deletion_scheduled_at``, ``deletion_remind_at`` and ``deletion_scheduling`` set: the
    n-th scheduling of its deletion); ``notify``: whether the owner is emailed now (False
    when the per-recipient email limits refused it); ``actor``: the User who asked, or None
    (a command, an automated clean-up). The project's own listener starts the run that
    emails the owner, reminds them and purges the tenant at ``purge_at``.
``tenant_restored``
    sender: ``Tenant``; ``tenant``: the Tenant, back to ``active`` (or ``suspended``, with
    the reason it had, when it was suspended before its deletion was scheduled);
    ``scheduling``: the number of the scheduling it ended; ``actor``: as above. The project's
    own listener ends that scheduling's waiting run and releases the tenant's held
    ``django.tasks`` tasks, in this transaction.
``signed_up``
    sender: ``Tenant``; ``tenant``: the new (``pending``) Tenant; ``user``: its owner, a new
    User whose email is not verified yet; ``verification_token``: the email-verification
    Token to send them (its raw value is recomputed by ``accounts.services.token_raw_value``).
    Sent after ``tenant_provisioning_requested``, in the same transaction.
``tenant_subdomain_changed``
    sender: ``Tenant``; ``tenant``: the active Tenant, its ``subdomain`` already the new
    one and its new primary Domain made; ``previous``: the list of Domains (kind
    ``previous``) it was served at until now, each with the ``expires_at`` its hold ends
    at; ``actor``: the User who asked, or None. The project's listener starts one run per
    previous domain that frees it then (``tenants.services.domains``).
``custom_domain_added``
    sender: ``Domain``; ``domain``: the new custom Domain, ``pending``, with the ``token``
    its TXT record must hold; ``actor``: the User who asked, or None. The project's
    listener starts the run that looks for the record until it is found or
    ``CUSTOM_DOMAIN_VERIFY_TIMEOUT`` has passed.
``custom_domain_removed``
    sender: ``Domain``; ``tenant``: the Tenant it was removed from; ``domain_id``: the
    deleted row's id; ``actor``: the User who asked, or None. No project listener: a run
    still looking for its record finds it gone and ends.
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
tenant_move_requested = Signal()
tenant_deletion_scheduled = Signal()
tenant_restored = Signal()
tenant_subdomain_changed = Signal()
custom_domain_added = Signal()
custom_domain_removed = Signal()
signed_up = Signal()
invitation_created = Signal()
invitation_closed = Signal()
invitation_resend_requested = Signal()
fleet_run_requested = Signal()
fleet_run_control_requested = Signal()
schema_pool_drawn = Signal()
