"""Fleet runs in the admin: progress, failed tenants with their error, and the run's controls
(pause, resume, cancel, retry failed), through the same services as ``migrate_fleet``."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.utils.html import format_html

from core.temporal_ui import workflow_ui_url
from tenants import fleet
from tenants.models import FleetFailure, FleetRun


class FleetFailureInline(admin.TabularInline):
    model = FleetFailure
    extra = 0
    fields = ["tenant", "schema_name", "migration", "error", "failed_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(FleetRun)
class FleetRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "progress",
        "migrated",
        "current",
        "skipped",
        "failed",
        "attempt",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    inlines = [FleetFailureInline]
    actions = ["pause", "resume", "cancel", "retry_failed"]
    fields = [
        "id",
        "status",
        "progress",
        "workflow",
        "attempt",
        "concurrency",
        "total",
        "migrated",
        "current",
        "skipped",
        "failed",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        # One query for the list, not one count of failures per row and column.
        return super().get_queryset(request).annotate(failed_count=Count("failures"))

    @admin.display(description="progress")
    def progress(self, run):
        done = run.migrated + run.current + run.skipped + run.failed_count
        percent = f" ({100 * done // run.total}%)" if run.total else ""
        return f"{done} / {run.total}{percent}"

    @admin.display(description="failed", ordering="failed_count")
    def failed(self, run):
        return run.failed_count

    @admin.display(description="workflow")
    def workflow(self, run):
        return format_html('<a href="{}">{}</a>', workflow_ui_url(run.workflow_id), run.workflow_id)

    @admin.action(description="Pause the selected fleet runs", permissions=["change"])
    def pause(self, request, queryset):
        self._each(request, queryset, "pause", "paused")

    @admin.action(description="Resume the selected fleet runs", permissions=["change"])
    def resume(self, request, queryset):
        self._each(request, queryset, "resume", "resumed")

    @admin.action(description="Cancel the selected fleet runs", permissions=["change"])
    def cancel(self, request, queryset):
        self._each(request, queryset, "cancel", "cancelling")

    @admin.action(
        description="Retry the failed tenants of the selected runs", permissions=["change"]
    )
    def retry_failed(self, request, queryset):
        for run in queryset:
            try:
                with transaction.atomic():
                    retried = fleet.fleet_run_retry_failed(run_id=run.pk)
            except fleet.FleetRequestRefused as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
                continue
            self.message_user(
                request,
                f"Fleet run {run.pk}: retrying {retried.failures.count()} failed tenant(s).",
            )

    def _each(self, request, queryset, action: str, done: str) -> None:
        for run in queryset:
            try:
                fleet.fleet_run_control(action=action, run_id=run.pk)
            except fleet.FleetRequestRefused as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
                continue
            self.message_user(request, f"Fleet run {run.pk}: {done}.")
