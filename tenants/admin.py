from django.contrib import admin

from tenants.models import Domain, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ["domain", "is_primary"]
    readonly_fields = ["domain", "is_primary"]
    can_delete = False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "subdomain", "status", "owner", "created_at", "provisioned_at"]
    list_filter = ["status"]
    search_fields = ["name", "subdomain", "owner__email"]
    readonly_fields = [
        "id", "schema_name", "status", "last_error",
        "created_at", "updated_at", "provisioned_at", "deleted_at",
    ]  # fmt: skip
    raw_id_fields = ["owner"]
    inlines = [DomainInline]

    def get_actions(self, request):
        # A bulk SQL delete would leave schemas behind; tenants are removed by a workflow.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return False
