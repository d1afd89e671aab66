"""Writes to tenants, their domains and memberships, and the signup that makes one. Each
service is one transaction; callers pass keyword arguments."""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import TokenPurpose
from accounts.services import EMAIL_UNAVAILABLE, token_issue, user_register
from tenants import pool, signals
from tenants.databases import on_database, place_tenant
from tenants.models import (
    InvalidTransition,
    Membership,
    Role,
    SuspensionReason,
    Tenant,
    TenantBeingMoved,
    TenantStatus,
    refuse_if_active,
)
from tenants.schemas.create import (
    ALREADY_THERE,
    FROM_TEMPLATE,
    create_from_template,
    create_schema,
    schema_exists,
)
from tenants.schemas.drop import drop_schema
from tenants.schemas.migrate import migrate_schema
from tenants.selectors import tenant_subdomain_taken
from tenants.services.domains import SUBDOMAIN_TAKEN
from tenants.services.people import membership_create
from tenants.validators import validate_subdomain
from tenants.workspace.defaults import seed_defaults

logger = logging.getLogger(__name__)

# Statuses only their own services enter and leave (suspend/reactivate, schedule/restore).
AWAY = frozenset({TenantStatus.SUSPENDED, TenantStatus.DELETION_SCHEDULED})
_NAME_MAX = Tenant._meta.get_field("name").max_length


def tenant_check_fields(*, name: str, subdomain: str) -> dict[str, list[str]]:
    """Field errors of a would-be tenant, found without any SQL ({} when valid)."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Enter a name."]
    elif len(name) > _NAME_MAX:
        errors["name"] = [f"A name has at most {_NAME_MAX} characters."]
    try:
        validate_subdomain(subdomain)
    except ValidationError as exc:
        errors["subdomain"] = exc.messages
    return errors


def tenant_create(*, name: str, subdomain: str, owner) -> Tenant:
    """Create a ``pending`` tenant. No schema is made here (the provisioning workflow does).

    Input is validated before any SQL runs; a subdomain already taken, in any letter case,
    is a ``ValidationError`` on ``subdomain``.
    """
    if errors := tenant_check_fields(name=name, subdomain=subdomain):
        raise ValidationError(errors)
    name = name.strip()
    tenant = Tenant(name=name, subdomain=subdomain, owner=owner, database=place_tenant())
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as exc:
        if "subdomain" in str(exc):
            raise ValidationError({"subdomain": [SUBDOMAIN_TAKEN]}) from exc
        raise
    return tenant


def tenant_set_status(*, tenant_id, status: str, error: str = "") -> Tenant:
    """Move a tenant along its lifecycle, under a row lock.

    Setting the status it already has is a no-op (safe to retry from an activity), and so
    is setting ``active`` on a suspended tenant or one scheduled for deletion (a late retry
    of provisioning's last step: only ``tenant_reactivate`` ends a suspension, only
    ``tenant_restore`` a scheduled deletion); any other move the lifecycle does not allow,
    and suspending or scheduling a deletion (their own services do that), raises
    ``InvalidTransition``.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.status == status or (tenant.status in AWAY and status == TenantStatus.ACTIVE):
            return tenant
        if status in AWAY:
            raise InvalidTransition(tenant.pk, tenant.status, status)
        tenant.check_transition(status)
        tenant.status = status
        now = timezone.now()
        if status == TenantStatus.FAILED:
            tenant.last_error = error
        elif status == TenantStatus.PROVISIONING:
            tenant.last_error = ""
        elif status == TenantStatus.ACTIVE:
            tenant.provisioned_at = now
        elif status == TenantStatus.DELETED:
            tenant.deleted_at = now
        tenant.save(
            update_fields=["status", "last_error", "provisioned_at", "deleted_at", "updated_at"]
        )
    return tenant


def tenant_begin_provisioning(*, tenant_id) -> str:
    """Move the tenant to ``provisioning`` (a no-op when it is already there: safe to retry).
    A tenant already ``deleting`` or ``deleted`` is left as it is: a deletion asked for before
    the provisioning run began supersedes the run, and its status is returned (``""``
    otherwise). Any other move the lifecycle does not allow raises ``InvalidTransition``."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().only("status").get(pk=tenant_id)
        if tenant.status in (TenantStatus.DELETING, TenantStatus.DELETED):
            return str(tenant.status)
        tenant_set_status(tenant_id=tenant_id, status=TenantStatus.PROVISIONING)
    return ""


def tenant_run_planned(*, tenant_id, workflow_id: str, steps: list[str]) -> None:
    """Record that run ``workflow_id`` will work on the tenant through ``steps``: its
    progress starts empty. Planning the run already recorded again keeps its progress (a
    repeated request names the same run). Meant for the transaction that requests the run."""
    Tenant.objects.filter(pk=tenant_id).exclude(workflow_id=workflow_id).update(
        workflow_id=workflow_id,
        steps_planned=list(steps),
        steps_done=[],
        current_step="",
        compensating=False,
        updated_at=timezone.now(),
    )


def tenant_step_started(*, tenant_id, workflow_id: str, step: str) -> None:
    """A step of the tenant's current run has begun: it is the ``current_step``; a step that
    is not in the plan is an undo, and the run is then compensating. An activity of any
    other run (a late one of an earlier attempt, a run started by hand) records nothing."""
    with transaction.atomic():
        tenant = _running(tenant_id, workflow_id)
        if tenant is None:
            return
        if step in tenant.steps_planned:
            tenant.current_step = step
        else:
            tenant.compensating = True
        tenant.save(update_fields=["current_step", "compensating", "updated_at"])


def tenant_step_done(*, tenant_id, workflow_id: str, step: str | list[str], then: str = "") -> None:
    """A planned step (or several) of the tenant's current run has finished; ``then``, a
    planned step, is the one that begins now. Idempotent."""
    with transaction.atomic():
        tenant = _running(tenant_id, workflow_id)
        if tenant is None:
            return
        steps = [step] if isinstance(step, str) else step
        new = [s for s in steps if s in tenant.steps_planned and s not in tenant.steps_done]
        if not new and not then:
            return
        done = {*tenant.steps_done, *new}  # in the plan's order, however they were recorded
        tenant.steps_done = [s for s in tenant.steps_planned if s in done]
        if then in tenant.steps_planned:
            tenant.current_step = then
        elif tenant.current_step in new:
            tenant.current_step = ""
        tenant.save(update_fields=["steps_done", "current_step", "updated_at"])


def _running(tenant_id, workflow_id: str) -> Tenant | None:
    return Tenant.objects.select_for_update().filter(pk=tenant_id, workflow_id=workflow_id).first()


def tenant_request_provisioning(*, tenant_id) -> Tenant:
    """Ask for a tenant to be provisioned: a ``pending`` tenant for the first time, or a
    ``failed`` one again (a retry, which moves it to ``provisioning`` at once so that a
    second click cannot start a second retry). Sends ``tenant_provisioning_requested``.

    Asking twice for a pending tenant is harmless: both requests name the same attempt.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.status == TenantStatus.FAILED:
            tenant.check_transition(TenantStatus.PROVISIONING)
            tenant.status = TenantStatus.PROVISIONING
            tenant.last_error = ""
            tenant.provisioning_attempt += 1
            tenant.save(
                update_fields=["status", "last_error", "provisioning_attempt", "updated_at"]
            )
        elif tenant.status != TenantStatus.PENDING:
            raise InvalidTransition(tenant.pk, tenant.status, TenantStatus.PROVISIONING)
        signals.tenant_provisioning_requested.send(
            sender=Tenant, tenant=tenant, attempt=tenant.provisioning_attempt
        )
    return tenant


def tenant_request_deletion(*, tenant_id, scheduling: int = 0) -> Tenant:
    """Mark a tenant ``deleting`` and send ``tenant_deletion_requested``: the purge, at once
    (a live tenant's owner schedules it instead: ``tenant_schedule_deletion``).

    A tenant already ``deleting`` is left as it is and the signal is sent again (the
    deletion workflow id is fixed, so this cannot start a second run). A tenant being
    provisioned keeps its status: the deletion stops the provisioning run first, then
    deletes. ``deleted`` tenants cannot be deleted (``InvalidTransition``). ``scheduling``:
    the scheduled deletion this purge cuts short (``tenant_purge_now``), whose waiting run
    is then ended.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.status not in (TenantStatus.DELETING, TenantStatus.PROVISIONING):
            tenant.check_transition(TenantStatus.DELETING)
            tenant.status = TenantStatus.DELETING
            tenant.save(update_fields=["status", "updated_at"])
        signals.tenant_deletion_requested.send(sender=Tenant, tenant=tenant, scheduling=scheduling)
    return tenant


def tenant_suspend(*, tenant: Tenant, reason: str, actor=None) -> Tenant:
    """Suspend an active tenant for ``reason`` (a ``SuspensionReason`` value): its hosts and
    API answer 403 (its owner can still read its status and export its data), its
    ``django.tasks`` tasks wait, its schema and data stay and fleet migrations still reach
    them. One transaction, under the tenant's row lock; sends ``tenant_suspended``.

    A reason that is not a ``SuspensionReason`` is a ``ValidationError``; a tenant that is
    not active (already suspended included) raises ``InvalidTransition``: nothing changes.
    Returns the tenant as saved.
    """
    if reason not in SuspensionReason.values:
        raise ValidationError(
            {"reason": [f"{reason!r} is not one of {', '.join(SuspensionReason.values)}."]}
        )
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.status != TenantStatus.ACTIVE:  # a restore's move to suspended is not this
            raise InvalidTransition(locked.pk, locked.status, TenantStatus.SUSPENDED)
        if reason == SuspensionReason.MOVING and not locked.move_to:
            raise TenantBeingMoved(locked.pk, locked.status, TenantStatus.SUSPENDED)
        locked.status = TenantStatus.SUSPENDED
        locked.suspension_reason = reason
        locked.suspended_at = timezone.now()
        locked.save(update_fields=["status", "suspension_reason", "suspended_at", "updated_at"])
        signals.tenant_suspended.send(sender=Tenant, tenant=locked, reason=reason, actor=actor)
    logger.info("tenant %s suspended (%s) by %s", locked.pk, reason, _who(actor))
    return locked


def tenant_reactivate(*, tenant: Tenant, actor=None, for_move: bool = False) -> Tenant:
    """Make a suspended tenant active again: served, its held tasks released. One
    transaction, under the tenant's row lock; sends ``tenant_reactivated``. A tenant that
    is not suspended raises ``InvalidTransition``, one suspended by a move under way
    ``TenantBeingMoved`` (unless it is that move ending it, ``for_move``): nothing changes.
    Returns the tenant as saved."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.status != TenantStatus.SUSPENDED:
            raise InvalidTransition(locked.pk, locked.status, TenantStatus.ACTIVE)
        if locked.suspension_reason == SuspensionReason.MOVING and not for_move:
            raise TenantBeingMoved(locked.pk, locked.status, TenantStatus.ACTIVE, locked.move_to)
        reason = locked.suspension_reason
        locked.status = TenantStatus.ACTIVE
        locked.suspension_reason = ""
        locked.suspended_at = None
        locked.save(update_fields=["status", "suspension_reason", "suspended_at", "updated_at"])
        signals.tenant_reactivated.send(sender=Tenant, tenant=locked, reason=reason, actor=actor)
    logger.info("tenant %s reactivated (was %s) by %s", locked.pk, reason, _who(actor))
    return locked


def _who(actor) -> str:
    return f"user {actor.pk}" if actor is not None else "the system"


# --- steps of provisioning and deletion (each idempotent: safe to run twice) -------------


def tenant_wait_settled(*, tenant_id, poll_every: float) -> str:
    """Wait while the tenant is ``provisioning``; returns the status it settles in."""
    while True:
        status = Tenant.objects.values_list("status", flat=True).get(pk=tenant_id)
        if status != TenantStatus.PROVISIONING:
            return status
        time.sleep(poll_every)


def tenant_schema_create(*, tenant_id) -> str:
    """Create the tenant's schema at the current migrations unless it exists: a warm pool
    schema renamed when the pool has one, else the template replayed, else migrations.
    Returns ``"pool"``, ``"template"``, ``"migrations"`` or ``"exists"``."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with on_database(tenant.database):
        return _existing_or_pooled(tenant.schema_name) or create_schema(tenant.schema_name)


def tenant_schema_create_quickly(*, tenant_id) -> str:
    """``tenant_schema_create`` without its slow way: a warm pool schema renamed to the
    tenant's (in the caller's transaction), else the template replayed (committed on its own
    when built on several connections). Returns ``"pool"``, ``"template"``, ``"exists"``
    (made before: a retry), or ``""`` when neither the pool nor a usable template can give
    the schema (it must then be made by migrations)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with on_database(tenant.database):
        if how := _existing_or_pooled(tenant.schema_name):
            return how
        return FROM_TEMPLATE if create_from_template(tenant.schema_name) else ""


def _existing_or_pooled(name: str) -> str:
    if schema_exists(name):
        return ALREADY_THERE
    return pool.FROM_POOL if pool.claim(name) is not None else ""


def tenant_schema_migrate(*, tenant_id) -> None:
    """Apply outstanding migrations to the tenant's schema (no-op when current)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with on_database(tenant.database):
        migrate_schema(tenant.schema_name)


def tenant_schema_drop(*, tenant_id) -> bool:
    """Drop the tenant's schema if present; returns whether there was one. Refused for an
    active tenant (``TenantIsActive``)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    refuse_if_active(tenant, "schema")
    with on_database(tenant.database):
        return drop_schema(tenant.schema_name)


def tenant_seed_defaults(*, tenant_id) -> None:
    """Create the tenant's default data, in its schema. Idempotent."""
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_context(tenant), transaction.atomic(using=tenant.database):
        seed_defaults()


# --- memberships ---------------------------------------------------------------------------


def membership_create_owner(*, tenant_id) -> Membership:
    """Make the tenant's owner a member with the owner role. Idempotent."""
    tenant = Tenant.objects.select_related("owner").get(pk=tenant_id)
    return membership_create(user=tenant.owner, tenant=tenant, role=Role.OWNER)


def membership_remove_owner(*, tenant_id) -> int:
    """Delete the owner's membership of the tenant, if any (undoes the one above). Refused
    for an active tenant (``TenantIsActive``)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    refuse_if_active(tenant, "owner membership")
    deleted, _ = Membership.objects.filter(tenant=tenant, user_id=tenant.owner_id).delete()
    return deleted


def tenant_access_revoke(*, tenant_id) -> int:
    """Deactivate every membership of the tenant; returns how many (0 on a second run).

    That is all the access a tenant grants: API tokens belong to a user, not to a tenant,
    and a token's holder reaches a tenant only through an active membership.
    """
    return Membership.objects.filter(tenant_id=tenant_id, is_active=True).update(is_active=False)


# --- signup --------------------------------------------------------------------------------


def account_signup(*, email: str, password: str, organization_name: str, subdomain: str):
    """Create a user, their organisation (a ``pending`` tenant), the owner membership, an
    email-verification token and an API token — in one transaction — and ask for the
    tenant to be provisioned. Returns ``(user, tenant, raw_api_token)``.

    Nothing here waits for Temporal: the signals it sends record workflow starts (tenant
    provisioning, user onboarding) that run after commit. Validation errors of every field
    are collected into one ``ValidationError``; that an email already has an account is told
    only when every other field is valid (see docs/api.md, "A taken email").
    """

    def as_signup_fields(errors: dict) -> dict:
        return {"organization_name" if k == "name" else k: v for k, v in errors.items()}

    with transaction.atomic():
        errors = as_signup_fields(tenant_check_fields(name=organization_name, subdomain=subdomain))
        if "subdomain" not in errors and tenant_subdomain_taken(subdomain=subdomain):
            errors["subdomain"] = [SUBDOMAIN_TAKEN]
        try:
            user, verification_token = user_register(email=email, password=password)
        except ValidationError as exc:
            if not (errors and exc.message_dict == {"email": [EMAIL_UNAVAILABLE]}):
                errors.update(exc.message_dict)
        if errors:
            transaction.set_rollback(True)
            raise ValidationError(errors)
        try:
            tenant = tenant_create(name=organization_name, subdomain=subdomain, owner=user)
        except ValidationError as exc:
            transaction.set_rollback(True)
            raise ValidationError(as_signup_fields(exc.message_dict)) from exc
        membership_create(user=user, tenant=tenant, role=Role.OWNER)
        _, raw_api_token = token_issue(
            user=user, purpose=TokenPurpose.API, ttl=timedelta(days=settings.API_TOKEN_TTL_DAYS)
        )
        tenant_request_provisioning(tenant_id=tenant.pk)
        signals.signed_up.send(
            sender=Tenant, tenant=tenant, user=user, verification_token=verification_token
        )
    return user, tenant, raw_api_token
