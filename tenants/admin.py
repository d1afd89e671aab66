"""Tenant admin. Its actions go through the same services, signals and outbox as the API:
nothing here creates or drops a schema, or talks to Temporal; progress is read from the
tenant row, which the run's activities write."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import ActionLocation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timeuntil
from django.views.decorators.http import require_POST

from accounts.services import EmailQuotaExceeded
from core.temporal_ui import workflow_ui_url
from tenants.models import (
    ALLOWED_TRANSITIONS,
    CustomDomainStatus,
    Domain,
    DomainKind,
    InvalidTransition,
    Invitation,
    InvitationStatus,
    Membership,
    SuspensionReason,
    Tenant,
    TenantBeingMoved,
    TenantStatus,
    deletion_grace_workflow_id,
)
from tenants.services import (
    tenant_reactivate,
    tenant_request_deletion,
    tenant_request_provisioning,
    tenant_suspend,
)
from tenants.services.deletion import (
    SCHEDULABLE,
    GracePeriodOver,
    tenant_purge_now,
    tenant_restore,
    tenant_schedule_deletion,
)
from tenants.services.domains import (
    TenantNotActive,
    custom_domain_recheck,
    custom_domain_remove,
    custom_domain_verify,
    txt_record_name,
)
from tenants.services.moves import MoveRefused, tenant_move_request
from tenants.services.people import PeopleError, invitation_resend, invitation_revoke

DELETE_ACTION = "delete_tenants"
# On the tenant list and on a tenant's own page (whose action form has this prefix).
BOTH = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]
FORM = ActionLocation.CHANGE_FORM.value
# The admin purges at once from every state the lifecycle lets go to ``deleting`` (pending,
# active, suspended, scheduled for deletion, failed), and from ``deleting`` itself: that
# re-runs a deletion whose workflow failed (the fixed workflow id attaches to a run that is
# still going instead).
DELETABLE = frozenset(
    s for s, moves in ALLOWED_TRANSITIONS.items() if TenantStatus.DELETING in moves
) | {TenantStatus.DELETING}


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _in(moment, now) -> str:
    return timeuntil(moment, now) if moment > now else "due now"


def _either(statuses) -> str:
    """``{"active", "failed", "pending"}`` -> ``"active, failed or pending"``."""
    names = sorted(str(s) for s in statuses)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _bulk_action(name: str, description: str, change, done: str, rule: str):
    """An admin action that calls ``change(tenant, user)`` for each selected tenant
    (``TenantAdmin.change_each``): one per choice (a suspension's reason, a move's target),
    no form in between."""

    def act(modeladmin, request, queryset):
        modeladmin.change_each(
            request, queryset, lambda tenant: change(tenant, request.user), done, rule
        )

    act.__name__ = name
    return admin.action(description=description, permissions=["change"])(act)


# A suspension for "moving" is a move's own: no action for it.
SUSPEND_ACTIONS = [
    _bulk_action(
        f"suspend_{reason.value}",
        f"Suspend selected tenants: {reason.label.lower()}",
        lambda tenant, user, reason=reason: tenant_suspend(
            tenant=tenant, reason=reason, actor=user
        ),
        f"suspended ({reason.label})",
        "only active tenants can be suspended",
    )
    for reason in SuspensionReason
    if reason != SuspensionReason.MOVING
]
MOVE_ACTIONS = [
    _bulk_action(
        f"move_to_{alias}",
        f"Move selected tenants to database {alias}",
        lambda tenant, user, alias=alias: tenant_move_request(tenant=tenant, to=alias, actor=user),
        f"being moved to {alias}",
        "only active or suspended tenants can be moved",
    )
    for alias in settings.TENANT_DATABASES
]


class DomainFormSet(BaseInlineFormSet):
    """Only a custom domain has a "remove" box: a primary host goes with the tenant, and a
    previous one when its hold ends."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if form.instance.kind != DomainKind.CUSTOM and "DELETE" in form.fields:
            # Disabled: a forged "remove" is ignored (the field keeps its initial False).
            form.fields["DELETE"].disabled = True
            form.fields["DELETE"].widget = forms.HiddenInput()


class DomainInline(admin.TabularInline):
    model = Domain
    formset = DomainFormSet
    extra = 0
    fields = [
        "domain",
        "kind",
        "status",
        "expires_at",
        "record",
        "checked_at",
        "verified_at",
        "failing_since",
    ]
    readonly_fields = fields
    can_delete = True
    verbose_name_plural = "domains (remove a custom domain with its box, then save)"

    def has_add_permission(self, request, obj=None):
        return False

    # A tenant's hosts are part of the tenant: whoever may see it sees them, and removing a
    # custom domain is a change of the tenant, as the admin's other actions on it are.
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("tenants.view_tenant") or self.has_delete_permission(
            request, obj
        )

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("tenants.change_tenant")

    @admin.display(description="TXT record")
    def record(self, domain):
        if domain.kind != DomainKind.CUSTOM:
            return "—"
        return format_html(
            "<code>{}</code> = <code>{}</code>", txt_record_name(domain.domain), domain.token
        )


class MembershipInline(admin.TabularInline):
    """The tenant's people, read-only here (they manage themselves over the API)."""

    model = Membership
    extra = 0
    fields = ["user", "role", "is_active", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["created_at"]

    def has_add_permission(self, request, obj=None):
        return False


class InvitationInline(admin.TabularInline):
    """The tenant's invitations, newest first; a pending one has *Resend* and *Revoke*
    buttons (they post the page's form to ``TenantAdmin.invitation_action``)."""

    model = Invitation
    extra = 0
    fields = ["email", "role", "status", "invited_by", "created_at", "expires_at", "manage"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="actions")
    def manage(self, invitation):
        if invitation.status != InvitationStatus.PENDING:
            return "—"
        return format_html_join(
            " ",
            '<button type="submit" class="button" formmethod="post" formaction="{}" '
            'data-invitation-action="{}">{}</button>',
            (
                (
                    reverse(
                        "admin:tenants_tenant_invitation",
                        args=[invitation.tenant_id, invitation.pk, action],
                    ),
                    action,
                    label,
                )
                for action, label in INVITATION_ACTIONS.items()
            ),
        )


INVITATION_ACTIONS = {"resend": "Resend", "revoke": "Revoke"}


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "subdomain",
        "status",
        "suspension_reason",
        "purge_at",
        "database",
        "primary_domain",
        "owner",
        "created_at",
        "provisioned_at",
        "deleted_at",
    ]
    list_filter = ["status", "suspension_reason", "database"]
    search_fields = ["name", "subdomain", "owner__email"]
    list_select_related = ["owner"]
    readonly_fields = [
        "subdomain",
        "owner",
        "status",
        "suspension_reason",
        "suspended_at",
        "scheduled_deletion",
        "last_error",
        "workflow",
        "progress",
        "schema_name",
        "database",
        "move_to",
        "moved_from",
        "move_drop_at",
        "provisioning_attempt",
        "created_at",
        "provisioned_at",
        "deleted_at",
    ]
    fields = ["name", *readonly_fields]
    inlines = [DomainInline, MembershipInline, InvitationInline]
    actions = [
        "provision",
        "retry_provisioning",
        *SUSPEND_ACTIONS,
        "reactivate",
        *MOVE_ACTIONS,
        "schedule_deletion",
        "restore",
        "recheck_domains",
        "requeue_deletion",
        DELETE_ACTION,
    ]

    # --- deletion: only ever through the deletion workflow -------------------------------
    # Tenants are created by signup and removed by the deletion workflow. The design:
    # * has_delete_permission() *without* an object is the real "tenants.delete_tenant"
    #   permission: it decides whether the "Delete" action is offered (permissions=["delete"])
    #   and whether a POST of it is accepted (changelist_view, and again in the action);
    # * *with* an object it is False, so the per-object delete page answers 403 and the
    #   change page shows no delete link (that page would drop the row, not the schema);
    # * the stock bulk "delete_selected" is removed in get_actions(), and delete_model() /
    #   delete_queryset() refuse, so no stock path can remove a row behind the workflow.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_delete_permission(request)

    def delete_model(self, request, obj):
        raise PermissionDenied("Tenants are deleted by the deletion workflow.")

    def delete_queryset(self, request, queryset):
        raise PermissionDenied("Tenants are deleted by the deletion workflow.")

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    def changelist_view(self, request, extra_context=None):
        # The stock admin would answer a forged POST of an action that is not offered with
        # "No action selected."; a deletion attempt without the permission is refused (403).
        if (
            request.method == "POST"
            and DELETE_ACTION in request.POST.getlist("action")
            and not self.has_delete_permission(request)
        ):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("domains")

    # --- an invitation's resend and revoke (buttons of the invitations inline) -------------
    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.invitation_action))
        return [
            path(
                "<uuid:object_id>/invitations/<uuid:invitation_id>/<str:action>/",
                view,
                name="tenants_tenant_invitation",
            ),
            *super().get_urls(),
        ]

    def invitation_action(self, request, object_id, invitation_id, action: str):
        """Resend or revoke one of the tenant's invitations, as staff (change permission);
        back to the tenant's page with a message saying what was done, or for which tenant
        it was refused and why."""
        tenant = get_object_or_404(Tenant, pk=object_id)
        if action not in INVITATION_ACTIONS or not self.has_change_permission(request, tenant):
            raise PermissionDenied
        service = invitation_resend if action == "resend" else invitation_revoke
        invitation = get_object_or_404(Invitation, pk=invitation_id, tenant=tenant)
        label = f"{tenant.name} ({tenant.subdomain})"
        try:
            service(tenant_id=tenant.pk, actor=None, invitation_id=invitation.pk)
        except (PeopleError, EmailQuotaExceeded) as exc:
            what = "resent" if action == "resend" else "revoked"
            self.message_user(
                request,
                f"The invitation of {invitation.email} to {label} was not {what}: "
                f"{str(exc).rstrip('.')}.",
                messages.WARNING,
            )
        else:
            done = "sent again" if action == "resend" else "revoked"
            self.message_user(
                request,
                f"The invitation of {invitation.email} to {label} was {done}.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))

    # --- columns and the change page ----------------------------------------------------
    # Nothing in list_display talks to Temporal: progress is read on the change page only.
    @admin.display(description="domain")
    def primary_domain(self, tenant):
        return next((d.domain for d in tenant.domains.all() if d.is_primary), "—")

    @admin.display(description="workflow")
    def workflow(self, tenant):
        if not tenant.workflow_id:
            return "—"
        return format_html(
            '<code>{}</code> · <a href="{}" target="_blank" rel="noopener">open in Temporal UI</a>',
            tenant.workflow_id,
            workflow_ui_url(tenant.workflow_id),
        )

    @admin.display(description="scheduled deletion")
    def scheduled_deletion(self, tenant):
        """What will happen when, read from the row: the grace run's emails and purge. The
        actions *Restore* (cancel) and *Purge now* (act now) are on this page."""
        if tenant.status != TenantStatus.DELETION_SCHEDULED:
            return "—"
        now = timezone.now()
        if tenant.deletion_reminded_at:
            reminder = format_html("sent {}", _when(tenant.deletion_reminded_at))
        elif tenant.deletion_remind_at:
            reminder = format_html(
                "due {} (in {})",
                _when(tenant.deletion_remind_at),
                _in(tenant.deletion_remind_at, now),
            )
        else:
            reminder = "none (the grace period is shorter than the reminder's lead)"
        by = tenant.deletion_scheduled_by or "the system"
        run = deletion_grace_workflow_id(tenant.pk, tenant.deletion_scheduling)
        return format_html(
            '<ul id="scheduled-deletion"><li>Scheduled: {} by {}</li><li>Reminder: {}</li>'
            "<li>Purge: {} (in {}), unless restored before</li>"
            '<li>Run: <code>{}</code> · <a href="{}" target="_blank" rel="noopener">'
            "open in Temporal UI</a></li></ul>",
            _when(tenant.deletion_scheduled_at),
            by,
            reminder,
            _when(tenant.purge_at),
            _in(tenant.purge_at, now),
            run,
            workflow_ui_url(run),
        )

    @admin.display(description="progress")
    def progress(self, tenant):
        if not tenant.workflow_id:
            return "—"
        done = format_html_join(", ", "{}", ((step,) for step in tenant.steps_done))
        return format_html(
            "{}: {} of {} steps done ({}); now: {}",
            tenant.run_state,
            len(tenant.steps_done),
            tenant.steps_total,
            done or "none",
            tenant.current_step or "—",
        )

    # --- actions ---------------------------------------------------------------------------
    @admin.action(description="Provision selected pending tenants", permissions=["change"])
    def provision(self, request, queryset):
        self._request_each(
            request,
            queryset,
            {TenantStatus.PENDING},
            tenant_request_provisioning,
            "queued for provisioning",
            "only pending tenants can be provisioned",
        )

    @admin.action(
        description="Retry provisioning of selected failed tenants", permissions=["change"]
    )
    def retry_provisioning(self, request, queryset):
        self._request_each(
            request,
            queryset,
            {TenantStatus.FAILED},
            tenant_request_provisioning,
            "queued for another provisioning attempt",
            "only failed tenants can be retried",
        )

    @admin.action(description="Reactivate selected suspended tenants", permissions=["change"])
    def reactivate(self, request, queryset):
        self.change_each(
            request,
            queryset,
            lambda tenant: tenant_reactivate(tenant=tenant, actor=request.user),
            "reactivated",
            "only suspended tenants can be reactivated",
        )

    @admin.action(
        description="Schedule deletion of selected tenants (grace period, then purge)",
        permissions=["delete"],
        location=BOTH,
    )
    def schedule_deletion(self, request, queryset):
        # The same service as the owner's DELETE, which purges a tenant with no data to keep
        # (pending, failed) at once: here only live ones are scheduled, the rest refused.
        def schedule(tenant):
            if tenant.status not in SCHEDULABLE:
                raise InvalidTransition(tenant.pk, tenant.status, TenantStatus.DELETION_SCHEDULED)
            tenant_schedule_deletion(tenant=tenant, actor=request.user)

        self.change_each(
            request,
            queryset,
            schedule,
            "scheduled for deletion",
            "only active or suspended tenants can have their deletion scheduled",
        )

    @admin.action(
        description="Restore selected tenants scheduled for deletion",
        permissions=["change"],
        location=BOTH,
    )
    def restore(self, request, queryset):
        self.change_each(
            request,
            queryset,
            lambda tenant: tenant_restore(tenant=tenant, actor=request.user),
            "restored",
            "only tenants scheduled for deletion can be restored",
        )

    @admin.action(
        description="Look up the custom domains of selected tenants now", permissions=["change"]
    )
    def recheck_domains(self, request, queryset):
        # The services the workflows call, here and now: one DNS lookup per domain.
        grace = settings.CUSTOM_DOMAIN_GRACE
        for tenant in queryset.order_by("name"):
            domains = list(tenant.domains.filter(kind=DomainKind.CUSTOM).order_by("domain"))
            if not domains:
                self._skipped(request, tenant, "it has no custom domains")
                continue
            outcome = []
            for domain in domains:
                if domain.status == CustomDomainStatus.PENDING:
                    status = custom_domain_verify(domain_id=domain.pk)
                else:
                    status = custom_domain_recheck(domain_id=domain.pk, grace_seconds=grace)
                outcome.append(f"{domain.domain} {status or 'removed'}")
            self.message_user(
                request,
                f"Looked up the custom domains of {tenant.name} ({tenant.subdomain}): "
                f"{', '.join(outcome)}.",
                messages.SUCCESS,
            )

    def save_formset(self, request, form, formset, change):
        if formset.model is not Domain:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # its rows are read-only: only removals are taken
        tenant = form.instance
        for domain in formset.deleted_objects:
            try:
                custom_domain_remove(tenant_id=tenant.pk, domain=domain.domain, actor=request.user)
            except TenantNotActive:
                self._skipped(
                    request,
                    tenant,
                    f"it is {tenant.status}; only an active tenant's custom domains can be "
                    f"removed ({domain.domain} kept)",
                )
                continue
            self.message_user(
                request,
                f"Removed custom domain {domain.domain} of {tenant.name} ({tenant.subdomain}).",
                messages.SUCCESS,
            )
        return None

    @admin.action(
        description="Re-queue deletion of selected deleting tenants", permissions=["delete"]
    )
    def requeue_deletion(self, request, queryset):
        # The deletion was confirmed when it was asked for; this asks again for a tenant still
        # ``deleting`` (its run failed, or its start is lost), so there is nothing to confirm.
        # The deletion workflow id is fixed: a run still going is not doubled.
        self._request_each(
            request,
            queryset,
            {TenantStatus.DELETING},
            tenant_request_deletion,
            "queued for deletion again",
            "only deleting tenants can be re-queued",
        )

    @admin.action(
        description="Purge now: delete selected tenants at once (schema, domains, access)",
        permissions=["delete"],
        location=BOTH,
    )
    def delete_tenants(self, request, queryset):
        # For erasure requests: no grace period, whether or not one was scheduled.
        if not self.has_delete_permission(request):  # changelist_view refuses first
            raise PermissionDenied
        rule = f"only {_either(DELETABLE)} tenants can be deleted"
        if request.POST.get("confirm") != "yes":
            return self._delete_confirmation(request, queryset, rule)

        def purge(tenant_id):
            tenant_purge_now(tenant=Tenant(pk=tenant_id), actor=request.user)

        self._request_each(request, queryset, DELETABLE, purge, "queued for deletion", rule)
        return None

    def _request_each(self, request, queryset, eligible, service, done: str, rule: str) -> None:
        """Call ``service`` for each selected tenant in ``eligible`` states, one transaction
        each; one success message for those queued, one warning per tenant skipped."""
        queued = []
        for selected in queryset.order_by("name"):
            try:
                with transaction.atomic():
                    # Locked, so the status checked here is the one the service sees.
                    tenant = Tenant.objects.select_for_update().get(pk=selected.pk)
                    if tenant.status not in eligible:
                        self._skipped(request, tenant, f"it is {tenant.status}; {rule}")
                        continue
                    service(tenant_id=tenant.pk)
            except InvalidTransition as exc:  # cannot happen under the lock; kept as a guard
                self._skipped(request, selected, f"it is {exc.current}; {rule}")
                continue
            except ValidationError as exc:
                self._skipped(request, selected, " ".join(exc.messages).rstrip("."))
                continue
            queued.append(f"{tenant.name} ({tenant.subdomain})")
        if queued:
            self.message_user(
                request, f"{len(queued)} {done}: {', '.join(queued)}.", messages.SUCCESS
            )

    def change_each(self, request, queryset, change, done: str, rule: str) -> None:
        """Call ``change(tenant)`` (a service that checks the move itself, under the row
        lock) for each selected tenant; one success message naming those changed, one
        warning per tenant refused, naming it and why."""
        changed = []
        for tenant in queryset.order_by("name"):
            try:
                change(tenant)
            except (GracePeriodOver, TenantBeingMoved, MoveRefused) as exc:
                self._skipped(request, tenant, str(exc).rstrip("."))
                continue
            except InvalidTransition as exc:
                self._skipped(request, tenant, f"it is {exc.current}; {rule}")
                continue
            except ValidationError as exc:
                self._skipped(request, tenant, " ".join(exc.messages).rstrip("."))
                continue
            changed.append(f"{tenant.name} ({tenant.subdomain})")
        if changed:
            self.message_user(
                request, f"{len(changed)} {done}: {', '.join(changed)}.", messages.SUCCESS
            )

    def _skipped(self, request, tenant, reason: str) -> None:
        self.message_user(
            request, f"Skipped {tenant.name} ({tenant.subdomain}): {reason}.", messages.WARNING
        )

    def _delete_confirmation(self, request, queryset, rule: str):
        tenants = list(
            queryset.order_by("name")
            .annotate(
                active_members=Count(
                    "memberships", filter=Q(memberships__is_active=True), distinct=True
                ),
            )
            .prefetch_related("domains")
        )
        deletable = [t for t in tenants if t.status in DELETABLE]
        skipped = [t for t in tenants if t.status not in DELETABLE]
        if not deletable:  # nothing to confirm: say why, back to the list
            for tenant in skipped:
                self._skipped(request, tenant, f"it is {tenant.status}; {rule}")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete tenants?",
            "subtitle": None,
            "opts": self.model._meta,
            "deletable": deletable,
            "skipped": skipped,
            "rule": rule,
            "action_name": DELETE_ACTION,
            # Asked from a tenant's own page, the answer goes back there, to its action form.
            "action_prefix": f"{FORM}-" if f"{FORM}-action" in request.POST else "",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/tenants/tenant/delete_confirmation_workflow.html", context
        )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "is_active", "created_at"]
    list_filter = ["role", "is_active"]
    raw_id_fields = ["user", "tenant"]


# Fleet runs have their own module; importing it registers them.
from tenants import fleet_admin  # noqa: E402, F401
