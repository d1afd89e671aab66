from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from accounts.models import EmailChange, EmailQuota, Token, User
from accounts.services import EmailQuotaExceeded, verification_email_resend


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email"]


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    add_form = UserCreationForm
    form = UserEditForm
    ordering = ["email"]
    list_display = ["email", "is_active", "is_staff", "email_verified_at", "date_joined"]
    search_fields = ["email"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Status", {"fields": ["is_active", "email_verified_at", "date_joined"]}),
        ("Permissions", {"fields": ["is_staff", "is_superuser", "groups", "user_permissions"]}),
    ]
    add_fieldsets = [
        (
            None,
            {"classes": ["wide"], "fields": ["email", "usable_password", "password1", "password2"]},
        )
    ]
    readonly_fields = ["date_joined"]
    actions = ["resend_verification"]

    @admin.action(description="Resend the verification email", permissions=["change"])
    def resend_verification(self, request, queryset):
        sent = []
        for user in queryset.order_by("email"):
            try:
                token = verification_email_resend(email=user.email)
            except EmailQuotaExceeded as exc:
                self.message_user(request, f"Skipped {user.email}: {exc}.", messages.WARNING)
                continue
            if token is None:
                reason = "inactive" if not user.is_active else "already verified"
                self.message_user(request, f"Skipped {user.email}: {reason}.", messages.WARNING)
            else:
                sent.append(user.email)
        if sent:
            self.message_user(
                request,
                f"Verification email queued for {len(sent)}: {', '.join(sent)}.",
                messages.SUCCESS,
            )


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "user",
        "purpose",
        "expires_at",
        "last_used_at",
        "used_at",
        "revoked_at",
    ]
    list_filter = ["purpose"]
    readonly_fields = ["key_hash", "prefix", "created_at", "last_used_at"]
    raw_id_fields = ["user"]


@admin.register(EmailQuota)
class EmailQuotaAdmin(admin.ModelAdmin):
    """What the per-recipient email limits have counted; deleting a row lifts the limits
    for that address and kind at once."""

    list_display = ["recipient", "kind", "sent_at"]
    list_filter = ["kind"]
    search_fields = ["recipient"]
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False


@admin.register(EmailChange)
class EmailChangeAdmin(admin.ModelAdmin):
    """Email changes asked for, pending or confirmed; read-only (a change is made by its
    confirmation token only, and a password reset revokes a pending one)."""

    list_display = ["user", "old_email", "new_email", "created_at", "confirmed_at"]
    search_fields = ["old_email", "new_email"]
    readonly_fields = ["user", "token", "old_email", "new_email", "created_at", "confirmed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
