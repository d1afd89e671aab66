import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django_tenants.models import DomainMixin, TenantMixin

from tenants.validators import validate_schema_name, validate_subdomain


class TenantStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    DELETION_SCHEDULED = "deletion_scheduled", "Deletion scheduled"
    FAILED = "failed", "Failed"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"


class SuspensionReason(models.TextChoices):
    BILLING = "billing", "Billing lapsed"
    ABUSE = "abuse", "Abuse"
    OWNER = "owner", "Asked by the owner"
    UNVERIFIED = "unverified", "Owner not verified"
    MOVING = "moving", "Being moved"


# The only place that says which lifecycle moves are legal. A retry of provisioning goes
# failed -> provisioning; deletion can start from any state that is not already in flight;
# pending -> failed is a provisioning run that could not even begin; a suspended tenant
# keeps its schema and data and goes back to active, or is deleted like an active one. A
# live tenant's deletion is first scheduled (a grace period, schema and data kept): it is
# restored to what it was (active, or suspended for the same reason) or purged (deleting).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TenantStatus.PENDING: frozenset(
        {TenantStatus.PROVISIONING, TenantStatus.FAILED, TenantStatus.DELETING}
    ),
    TenantStatus.PROVISIONING: frozenset({TenantStatus.ACTIVE, TenantStatus.FAILED}),
    TenantStatus.ACTIVE: frozenset(
        {TenantStatus.SUSPENDED, TenantStatus.DELETION_SCHEDULED, TenantStatus.DELETING}
    ),
    TenantStatus.SUSPENDED: frozenset(
        {TenantStatus.ACTIVE, TenantStatus.DELETION_SCHEDULED, TenantStatus.DELETING}
    ),
    TenantStatus.DELETION_SCHEDULED: frozenset(
        {TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.DELETING}
    ),
    TenantStatus.FAILED: frozenset({TenantStatus.PROVISIONING, TenantStatus.DELETING}),
    TenantStatus.DELETING: frozenset({TenantStatus.DELETED}),
    TenantStatus.DELETED: frozenset(),
}


class InvalidTransition(Exception):
    """A status change that the lifecycle does not allow."""

    def __init__(self, tenant_id, current: str, target: str):
        current, target = str(current), str(target)  # plain values, not enum reprs
        self.tenant_id, self.current, self.target = tenant_id, current, target
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current])) or "nothing"
        super().__init__(
            f"Tenant {tenant_id} cannot go from {current!r} to {target!r} "
            f"(from {current!r} it can go to: {allowed})."
        )


class TenantBeingMoved(InvalidTransition):
    """A change a move under way makes itself: a suspension for ``moving`` begins and ends
    with the move, never by hand."""

    def __init__(self, tenant_id, current: str, target: str, move_to: str = ""):
        Exception.__init__(
            self,
            f"Tenant {tenant_id} is being moved"
            + (f" to {move_to!r}" if move_to else "")
            + ": the move suspends it with reason 'moving' and ends that suspension itself.",
        )
        self.tenant_id, self.current, self.target = tenant_id, str(current), str(target)


# A live tenant: its schema is kept and kept current (fleet migrations reach it), whether
# or not it is served. One scheduled for deletion is live until it is purged: a restore
# brings it back as it was, at the code's migrations.
LIVE = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.DELETION_SCHEDULED})
# A tenant whose host answers: in its schema (active), or 403 saying why (suspended). Every
# other host, a tenant scheduled for deletion's included, answers 404 like a gone one.
ANSWERING = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED})
# A tenant whose django.tasks tasks wait (orchestration.task_holds) and run again when it
# comes back (reactivated, restored); tasks released by its deletion end at once.
HOLDING_TASKS = frozenset({TenantStatus.SUSPENDED, TenantStatus.DELETION_SCHEDULED})


class TenantIsActive(Exception):
    """Tearing down part of a live (active, suspended or scheduled for deletion) tenant (its
    schema, domains or owner membership): refused whoever asks, so an undo that comes too
    late can never break a live tenant, nor lose the data of one that may come back."""

    def __init__(self, tenant_id, what: str, status: str = TenantStatus.ACTIVE):
        super().__init__(f"Tenant {tenant_id} is {status}: its {what} is not removed.")


def refuse_if_active(tenant, what: str) -> None:
    if tenant.status in LIVE:
        raise TenantIsActive(tenant.pk, what, str(tenant.status))


class Tenant(TenantMixin):
    """An organisation, with its own PostgreSQL schema.

    The schema is made by the provisioning workflow, never by ``save()``, and dropped by the
    deletion workflow; the row stays behind as a tombstone with ``deleted_at``.
    """

    auto_create_schema = False
    auto_drop_schema = False

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # django-tenants' field, with our validator: derived from the id, never from user input.
    schema_name = models.CharField(max_length=63, unique=True, validators=[validate_schema_name])
    name = models.CharField(max_length=200)
    subdomain = models.CharField(max_length=63, unique=True, validators=[validate_subdomain])
    # The database alias its schema lives in (``TENANT_DATABASES``): chosen when the tenant
    # is created (``tenants.databases.place_tenant``), changed only by a move.
    database = models.CharField(max_length=63, default="default", db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_tenants"
    )
    status = models.CharField(
        max_length=24, choices=TenantStatus.choices, default=TenantStatus.PENDING, db_index=True
    )
    last_error = models.TextField(blank=True, default="")
    # Why and since when the tenant is suspended; both cleared by its reactivation.
    suspension_reason = models.CharField(
        max_length=16, choices=SuspensionReason.choices, blank=True, default=""
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    # Incremented by each retry after failure; part of the provisioning workflow id, so a
    # retry is a new run while a repeated request for the same attempt is not.
    provisioning_attempt = models.PositiveIntegerField(default=1)
    # A scheduled deletion (tenants/services/deletion.py): purged at ``purge_at`` unless
    # restored before. ``deletion_scheduling`` counts the schedulings (part of the grace
    # run's workflow id: scheduling again after a restore is a new run, and a purge checks
    # it is still its own scheduling). The others are cleared by a restore.
    purge_at = models.DateTimeField(null=True, blank=True)
    deletion_scheduled_at = models.DateTimeField(null=True, blank=True)
    deletion_scheduled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    deletion_remind_at = models.DateTimeField(null=True, blank=True)  # none: no reminder
    deletion_reminded_at = models.DateTimeField(null=True, blank=True)
    deletion_scheduling = models.PositiveIntegerField(default=0)
    # A move to another database (tenants/services/moves.py): ``move_to`` while one is under
    # way; ``moves`` counts them (part of the move run's workflow id). After the switch the
    # old schema waits in ``moved_from`` until ``move_drop_at``, then is dropped.
    move_to = models.CharField(max_length=63, blank=True, default="")
    moves = models.PositiveIntegerField(default=0)
    moved_from = models.CharField(max_length=63, blank=True, default="")
    move_drop_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Progress of the lifecycle run working on the tenant now (provisioning or deletion):
    # planned when the run is requested, then written by its activities, each in its own
    # transaction. The API and the admin read it here and never ask Temporal.
    workflow_id = models.CharField(max_length=255, blank=True, default="")
    steps_planned = models.JSONField(default=list, blank=True)
    steps_done = models.JSONField(default=list, blank=True)
    current_step = models.CharField(max_length=64, blank=True, default="")
    compensating = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("schema_name"), name="tenant_schema_name_ci_unique"),
            models.UniqueConstraint(Lower("subdomain"), name="tenant_subdomain_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(status__in=TenantStatus.values), name="tenant_status_valid"
            ),
            # A suspended tenant always says why.
            models.CheckConstraint(
                condition=~models.Q(status=TenantStatus.SUSPENDED)
                | models.Q(suspension_reason__in=SuspensionReason.values),
                name="tenant_suspension_reason_valid",
            ),
            # A tenant scheduled for deletion always says when it is purged.
            models.CheckConstraint(
                condition=~models.Q(status=TenantStatus.DELETION_SCHEDULED)
                | models.Q(purge_at__isnull=False),
                name="tenant_purge_at_when_scheduled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.subdomain})"

    def save(self, *args, **kwargs):
        if not self.schema_name:
            self.schema_name = schema_name_for(self.id)
        super().save(*args, **kwargs)

    @property
    def steps_total(self) -> int:
        return len(self.steps_planned)

    @property
    def run_state(self) -> str:
        """``queued`` (no step begun yet), ``running``, ``compensating`` (undoing after a
        failure), ``completed`` or ``failed``; ``""`` when no run was ever requested."""
        if not self.workflow_id:
            return ""
        if self.status in (*LIVE, TenantStatus.DELETED):
            return "completed"
        if self.status == TenantStatus.FAILED:
            return "failed"
        if self.compensating:
            return "compensating"
        return "running" if (self.current_step or self.steps_done) else "queued"

    def can_transition_to(self, target: str) -> bool:
        return target in ALLOWED_TRANSITIONS[self.status]

    def check_transition(self, target: str) -> None:
        if not self.can_transition_to(target):
            raise InvalidTransition(self.pk, self.status, target)


def suspended_answer(tenant: Tenant) -> dict:
    """The body of a 403 for a suspended tenant's host or API: what it is and why."""
    return {
        "detail": f"This organisation is suspended ({tenant.get_suspension_reason_display()}).",
        "status": TenantStatus.SUSPENDED.value,
        "reason": tenant.suspension_reason,
    }


def deletion_scheduled_answer(tenant: Tenant) -> dict:
    """The body of a 403 for a member (not the owner) asking about a tenant scheduled for
    deletion: what it is and when it goes."""
    when = f"{tenant.purge_at:%Y-%m-%d %H:%M} UTC"
    return {
        "detail": f"This organisation is scheduled for deletion on {when}; its owner can "
        "restore it until then.",
        "status": TenantStatus.DELETION_SCHEDULED.value,
    }


def move_workflow_id(tenant_id, number: int) -> str:
    """Move number ``number`` of the tenant to another database: one run per move. UUIDs
    only."""
    return f"tenant-move-{tenant_id}-{number}"


def deletion_grace_workflow_id(tenant_id, scheduling: int) -> str:
    """The run that waits out scheduling number ``scheduling`` of the tenant's deletion: one
    per scheduling, so scheduling again after a restore is a new run. UUIDs only."""
    return f"tenant-deletion-grace-{tenant_id}-{scheduling}"


def schema_name_for(tenant_id: uuid.UUID) -> str:
    """The schema of a tenant: fixed by its id, so renaming a subdomain never moves data."""
    return f"t_{tenant_id.hex}"


class DomainKind(models.TextChoices):
    PRIMARY = "primary", "Primary"  # <subdomain>.<TENANT_BASE_DOMAIN>: serves the tenant
    PREVIOUS = "previous", "Previous"  # a subdomain changed away from: redirects, then freed
    CUSTOM = "custom", "Custom"  # the tenant's own domain: serves once verified


class CustomDomainStatus(models.TextChoices):
    PENDING = "pending", "Pending verification"  # waiting for its TXT record
    VERIFIED = "verified", "Verified"  # serves the tenant
    FAILING = "failing", "Failing"  # its record went missing: still serves, owner warned
    STOPPED = "stopped", "Stopped"  # failed for longer than CUSTOM_DOMAIN_GRACE
    EXPIRED = "expired", "Expired"  # never verified within CUSTOM_DOMAIN_VERIFY_TIMEOUT


# A custom domain in these statuses serves its tenant.
SERVING = frozenset({CustomDomainStatus.VERIFIED, CustomDomainStatus.FAILING})


class Domain(DomainMixin):
    """A host name that routes to a tenant.

    * ``primary``: ``<subdomain>.<TENANT_BASE_DOMAIN>``, one per tenant, serves it;
    * ``previous``: a subdomain the tenant changed away from; it answers ``308`` to the
      primary host until ``expires_at``, is held (no other tenant can take it) until then,
      and is deleted then;
    * ``custom``: a domain of the tenant's own, proven by a TXT record holding ``token``;
      it serves the tenant while ``status`` is ``verified`` or ``failing``.

    ``domain`` is unique: a host belongs to one tenant at a time.
    """

    kind = models.CharField(
        max_length=16, choices=DomainKind.choices, default=DomainKind.PRIMARY, db_index=True
    )
    expires_at = models.DateTimeField(null=True, blank=True)  # previous: freed then
    # Custom domains only: the TXT record's value, the verification status and its times.
    token = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=CustomDomainStatus.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(auto_now_add=True, null=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind=DomainKind.PREVIOUS) | models.Q(expires_at__isnull=False),
                name="domain_previous_expires",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind=DomainKind.CUSTOM, status__in=CustomDomainStatus.values)
                    & ~models.Q(token="")
                )
                | (~models.Q(kind=DomainKind.CUSTOM) & models.Q(status="")),
                name="domain_custom_status_valid",
            ),
            # Only a primary-kind domain is ever flagged primary (django-tenants reads it).
            models.CheckConstraint(
                condition=models.Q(is_primary=False) | models.Q(kind=DomainKind.PRIMARY),
                name="domain_primary_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs):
        if self.kind != DomainKind.PRIMARY:
            # Not DomainMixin.save(), which makes a tenant's first domain primary whatever
            # its kind.
            self.is_primary = False
            return models.Model.save(self, *args, **kwargs)
        return super().save(*args, **kwargs)

    @property
    def serves(self) -> bool:
        """Whether a request to this host is served the tenant (not redirected, not 404)."""
        if self.kind == DomainKind.CUSTOM:
            return self.status in SERVING
        return self.kind == DomainKind.PRIMARY


class SchemaTemplate(models.Model):
    """A dump of the template schema, replayed to create tenant schemas quickly.

    ``script`` is the template's DDL and rows with its name replaced by ``PLACEHOLDER``;
    ``migrations`` is the migration state it was taken at: the script is used only while
    the code defines exactly those migrations.
    """

    PLACEHOLDER = "__tenant_schema__"

    name = models.CharField(max_length=63, primary_key=True)
    migrations = models.JSONField()
    script = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user's role in one tenant. Deactivated (not deleted) when the tenant is deleted.

    Lives here, not in ``accounts``: a membership is a tenant's list of people, and keeping
    it beside ``Tenant`` lets ``accounts`` know nothing of tenants. Its table keeps the name
    it was created with.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "accounts_membership"
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.tenant}"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class Invitation(models.Model):
    """An invitation of an email address to a tenant with a role, by one of its owners or
    admins. Its link's secret is single-use: only its SHA-256 is stored (``key_hash``), with
    the ``nonce`` it is derived from with SECRET_KEY (``accounts.services.secret_derive``),
    so the invitation workflow can email it knowing only the invitation's id. It leaves
    ``pending`` once, by a compare-and-set: accepted (``accepted_by`` joined), revoked, or
    expired by its workflow at ``expires_at``."""

    SECRET_PURPOSE = "invitation"  # noqa: S105 (a label, not a secret)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    nonce = models.CharField(max_length=32, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    reminded_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One pending invitation per address and tenant, in any letter case.
            models.UniqueConstraint(
                "tenant",
                Lower("email"),
                condition=models.Q(status="pending"),
                name="invitation_pending_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=InvitationStatus.values),
                name="invitation_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Invitation as {self.get_role_display().lower()} ({self.get_status_display().lower()})"
        )


class FleetStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # requested; its workflow has not begun
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    CANCELLING = "cancelling", "Cancelling"
    COMPLETED = "completed", "Completed"  # every tenant it reached is current
    FAILED = "failed", "Completed with failures"
    CANCELLED = "cancelled", "Cancelled"


FLEET_RUN_OPEN = (
    FleetStatus.PENDING,
    FleetStatus.RUNNING,
    FleetStatus.PAUSED,
    FleetStatus.CANCELLING,
)


class FleetRun(models.Model):
    """One migration of every tenant schema to a set of migrations (one per deploy: the id
    is derived from the migrations), by ``FleetMigrationWorkflow``.

    The workflow writes its progress here, batch by batch; the command, the admin and the
    metrics read it here and never ask Temporal. ``cursor`` is the last schema a recorded
    batch reached: recording a batch is a compare-and-set on it, so a retried recording
    never counts a batch twice. A "retry failed" is a further attempt of the same run over
    its failures only, under a ``workflow_id`` of its own.
    """

    id = models.CharField(max_length=64, primary_key=True)
    migrations = models.JSONField(default=list)
    status = models.CharField(
        max_length=16, choices=FleetStatus.choices, default=FleetStatus.PENDING, db_index=True
    )
    workflow_id = models.CharField(max_length=96)
    attempt = models.PositiveIntegerField(default=1)
    concurrency = models.PositiveIntegerField()
    retry_failed = models.BooleanField(default=False)  # the current attempt's scope
    total = models.PositiveIntegerField(default=0)  # tenants the current attempt covers
    migrated = models.PositiveIntegerField(default=0)
    current = models.PositiveIntegerField(default=0)  # already current when reached
    skipped = models.PositiveIntegerField(default=0)  # provisioning/deleting when reached
    cursor = models.CharField(max_length=63, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=FleetStatus.values), name="fleet_status_valid"
            )
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_open(self) -> bool:
        return self.status in FLEET_RUN_OPEN


class FleetFailure(models.Model):
    """A tenant schema a fleet run could not migrate: which migration failed, and why. Removed
    when a later attempt migrates it."""

    run = models.ForeignKey(FleetRun, on_delete=models.CASCADE, related_name="failures")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    schema_name = models.CharField(max_length=63)
    migration = models.CharField(max_length=255, blank=True, default="")
    error = models.TextField()
    failed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["schema_name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "tenant"], name="fleet_failure_unique")
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}: {self.migration}"


class PoolSchema(models.Model):
    """A warm schema: built from the template at the migrations ``fingerprint`` names,
    waiting for provisioning to claim it by renaming it to a tenant's schema
    (``tenants/pool.py``). The row and the schema are created, claimed and dropped in one
    transaction each. Its name (``pool_<hex>``) can never be a tenant's (``t_<hex>``), and
    no tenant row or domain points at it: tenants, the API, the admin's tenant list and
    ``migrate_schemas`` never see it.
    """

    PREFIX = "pool_"

    name = models.CharField(max_length=63, primary_key=True, validators=[validate_schema_name])
    fingerprint = models.CharField(max_length=64, db_index=True)
    database = models.CharField(max_length=63, default="default", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class TenantExport(models.Model):
    """A dump of a tenant's own tables (one JSON file per table, zipped) in ``STORAGES``'
    default storage, made by the ``tenants.exports.export_tenant_data`` task. Deleted, file
    and row, ``TENANT_EXPORT_RETENTION`` seconds after it finished, and when the tenant is
    deleted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    # The django.tasks result id of the task that makes it (get_result() answers it).
    task_result_id = models.CharField(max_length=64, blank=True, default="")
    file_name = models.CharField(max_length=255, blank=True, default="")
    size = models.PositiveBigIntegerField(null=True, blank=True)
    # {table: number of rows} once ready.
    tables = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.tenant_id} ({self.status})"
