from django.contrib import admin, messages
from django.db.models.functions import Now

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
