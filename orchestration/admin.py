from django.contrib import admin, messages
from django.utils import timezone

from orchestration.models import OutboxEntry, OutboxStatus


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    """Read-only view of the outbox; rows are written by receivers and the relay only."""

    list_display = ["workflow_id", "kind", "workflow_type", "status", "attempts", "task_queue",
                    "created_at", "started_at"]  # fmt: skip
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
        updated = queryset.exclude(status=OutboxStatus.STARTED).update(
            status=OutboxStatus.PENDING, available_at=timezone.now()
        )
        skipped = queryset.count() - updated
        self.message_user(request, f"{updated} row(s) will be retried by the relay.")
        if skipped:
            self.message_user(
                request, f"{skipped} row(s) skipped: already started.", level=messages.WARNING
            )
