"""Tenant admin. Its actions go through the same services, signals and outbox as the API:
nothing here creates or drops a schema, or talks to Temporal except to read progress."""

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from orchestration.progress import provisioning_progress, workflow_ui_url
from orchestration.receivers import provisioning_workflow_id
from tenants.models import ALLOWED_TRANSITIONS, Domain, InvalidTransition, Tenant, TenantStatus
from tenants.services import tenant_request_deletion, tenant_request_provisioning


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ["domain", "is_primary"]
    readonly_fields = ["domain", "is_primary"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "subdomain", "status", "primary_domain", "owner", "created_at",
                    "provisioned_at", "deleted_at"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["name", "subdomain", "owner__email"]
    list_select_related = ["owner"]
    readonly_fields = ["subdomain", "owner", "status", "last_error", "workflow", "progress",
                       "schema_name", "provisioning_attempt", "created_at", "provisioned_at",
                       "deleted_at"]  # fmt: skip
    fields = ["name", *readonly_fields]
    inlines = [DomainInline]
    actions = ["provision", "retry_provisioning", "delete_tenants"]

    # Tenants are created by signup and removed by the deletion workflow: no add form, no
    # per-object delete view and no stock bulk delete (which would leave schemas behind).
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None:
            return False  # the object's delete page would bypass the workflow
        return super().has_delete_permission(request)  # gates the "Delete" action

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("domains")

    # --- columns and the change page ----------------------------------------------------
    @admin.display(description="domain")
    def primary_domain(self, tenant):
        return next((d.domain for d in tenant.domains.all() if d.is_primary), "—")

    @admin.display(description="provisioning workflow")
    def workflow(self, tenant):
        workflow_id = provisioning_workflow_id(tenant.pk, tenant.provisioning_attempt)
        return format_html(
            '<code>{}</code> · <a href="{}" target="_blank" rel="noopener">open in Temporal UI</a>',
            workflow_id,
            workflow_ui_url(workflow_id),
        )

    @admin.display(description="progress")
    def progress(self, tenant):
        if tenant.status not in (TenantStatus.PENDING, TenantStatus.PROVISIONING):
            return "—"
        info = provisioning_progress(tenant)  # a read, only on the change page
        if not info["available"]:
            return format_html("progress unavailable ({})", info["reason"])
        done = format_html_join(", ", "{}", ((step,) for step in info["steps_done"]))
        return format_html(
            "{}: {} of {} steps done ({}); now: {}",
            info["state"], len(info["steps_done"]), info["total"], done or "none",
            info["current_step"] or "—",
        )  # fmt: skip

    # --- actions ---------------------------------------------------------------------------
    @admin.action(description="Provision selected pending tenants", permissions=["change"])
    def provision(self, request, queryset):
        self._request_each(
            request, queryset, TenantStatus.PENDING, tenant_request_provisioning,
            "queued for provisioning", "only pending tenants can be provisioned",
        )  # fmt: skip

    @admin.action(
        description="Retry provisioning of selected failed tenants", permissions=["change"]
    )
    def retry_provisioning(self, request, queryset):
        self._request_each(
            request, queryset, TenantStatus.FAILED, tenant_request_provisioning,
            "queued for another provisioning attempt", "only failed tenants can be retried",
        )  # fmt: skip

    @admin.action(
        description="Delete selected tenants (schema, domains, access)", permissions=["delete"]
    )
    def delete_tenants(self, request, queryset):
        if not request.user.has_perm("tenants.delete_tenant"):
            raise PermissionDenied
        if request.POST.get("confirm") != "yes":
            return self._delete_confirmation(request, queryset)
        deletable = {
            s for s, moves in ALLOWED_TRANSITIONS.items() if TenantStatus.DELETING in moves
        }
        self._request_each(
            request, queryset, deletable, tenant_request_deletion, "queued for deletion",
            "it cannot be deleted now (pending, active or failed tenants can)",
        )  # fmt: skip
        return None

    def _request_each(self, request, queryset, eligible, service, done, rule) -> None:
        eligible = {eligible} if isinstance(eligible, str) else eligible
        queued = []
        for tenant in queryset.order_by("name"):
            if tenant.status not in eligible:
                self._skipped(request, tenant, f"it is {tenant.status}; {rule}")
                continue
            try:
                service(tenant_id=tenant.pk)
            except InvalidTransition as exc:  # changed since the page was loaded
                self._skipped(request, tenant, str(exc))
                continue
            queued.append(f"{tenant.name} ({tenant.subdomain})")
        if queued:
            self.message_user(
                request, f"{len(queued)} {done}: {', '.join(queued)}.", messages.SUCCESS
            )

    def _skipped(self, request, tenant, reason: str) -> None:
        self.message_user(
            request, f"Skipped {tenant.name} ({tenant.subdomain}): {reason}.", messages.WARNING
        )

    def _delete_confirmation(self, request, queryset):
        tenants = queryset.annotate(
            active_members=Count(
                "memberships", filter=Q(memberships__is_active=True), distinct=True
            ),
            open_tokens=Count(
                "tokens", filter=Q(tokens__used_at=None, tokens__revoked_at=None), distinct=True
            ),
        ).prefetch_related("domains")
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete tenants?",
            "opts": self.model._meta,
            "tenants": tenants,
            "action_name": "delete_tenants",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(
            request, "admin/tenants/tenant/delete_workflow_confirmation.html", context
        )
