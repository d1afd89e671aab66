from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models.functions import Now
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from accounts.models import User
from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.operations import REQUEUE_DELETION, RETRY_PROVISIONING, sections_for
from tenants.models import FleetRun, Tenant


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    """Read-only view of the outbox; rows are written by receivers and the relay only."""

    list_display = [
        "workflow_id",
        "kind",
        "workflow_type",
        "status",
        "attempts",
        "task_queue",
        "created_at",
        "started_at",
    ]
    list_filter = ["status", "kind", "workflow_type"]
    search_fields = ["workflow_id"]
    actions = ["retry_now"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry now (failed or waiting rows)", permissions=["change"])
    def retry_now(self, request, queryset):
        # Rows are never held locked while a relay starts them, so this does not wait on a
        # running relay. A lease is cleared: the row is due now for any relay (one that was
        # starting it finds its lease gone and leaves the row to the next claim; Temporal's
        # id policy keeps that second start from making a second run).
        updated = queryset.exclude(status=OutboxStatus.STARTED).update(
            status=OutboxStatus.PENDING, available_at=Now(), lease_owner="", lease_expires_at=None
        )
        skipped = queryset.count() - updated
        self.message_user(request, f"{updated} row(s) will be retried by the relay.")
        if skipped:
            self.message_user(
                request, f"{skipped} row(s) skipped: already started.", level=messages.WARNING
            )


# --- the operations page (/admin/operations/) ---------------------------------------------------
# Its buttons run the model admins' own actions on one object, through get_actions(), so the
# permissions, the locking and the messages are exactly those of the change lists.
OPERATIONS_ACTIONS = {
    "retry_outbox": (OutboxEntry, "retry_now"),
    RETRY_PROVISIONING: (Tenant, "retry_provisioning"),
    REQUEUE_DELETION: (Tenant, "requeue_deletion"),
    "resend_verification": (User, "resend_verification"),
    "fleet_pause": (FleetRun, "pause"),
    "fleet_resume": (FleetRun, "resume"),
    "fleet_retry_failed": (FleetRun, "retry_failed"),
}

# The admin index links to the page (the template adds one box above the app list).
admin.site.index_template = "admin/orchestration/index.html"


def operations_view(request):
    """Staff only (wrapped in ``admin_site.admin_view`` in the URL conf). GET shows the
    sections the user may see; POST runs one action on one object, then shows the page
    again with the action's messages."""
    if request.method == "POST":
        return _run_action(request)
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "subtitle": None,
        "sections": sections_for(request.user),
        "allowed": _allowed_actions(request),
    }
    return TemplateResponse(request, "admin/orchestration/operations.html", context)


def _allowed_actions(request) -> set[str]:
    allowed = set()
    for name, (model, action) in OPERATIONS_ACTIONS.items():
        if action in admin.site.get_model_admin(model).get_actions(request):
            allowed.add(name)
    return allowed


def _run_action(request):
    name = request.POST.get("action", "")
    if name not in OPERATIONS_ACTIONS:
        return HttpResponseBadRequest(
            f"Unknown action {name!r}: use one of {', '.join(sorted(OPERATIONS_ACTIONS))}.",
            content_type="text/plain",
        )
    model, action = OPERATIONS_ACTIONS[name]
    model_admin = admin.site.get_model_admin(model)
    found = model_admin.get_actions(request).get(action)
    if found is None:  # the user lacks the permission the action asks for
        raise PermissionDenied
    pk = request.POST.get("pk", "")
    what = model._meta.verbose_name
    try:
        queryset = model_admin.get_queryset(request).filter(pk=pk)
        exists = queryset.exists()
    except (ValueError, TypeError, ValidationError):
        return HttpResponseBadRequest(
            f"{pk!r} is not the id of a {what}.", content_type="text/plain"
        )
    if not exists:
        messages.warning(request, f"No {what} with id {pk} any more: nothing done.")
    else:
        found.func(model_admin, request, queryset)
    return redirect("admin-operations")
