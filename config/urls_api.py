"""The JSON API on the public host, /api/v1/."""

from django.urls import path

from accounts.api.auth import (
    EmailChangeConfirmView,
    EmailChangeView,
    LogoutAllView,
    LogoutView,
    PasswordResetConfirmView,
    PasswordResetView,
    TokenListView,
)
from accounts.api.views import ResendVerificationView, TokenView, VerifyEmailView
from tenants.api.domains import TenantDomainsView, TenantDomainView
from tenants.api.exports import ExportDownloadView, TenantExportsView, TenantExportView
from tenants.api.people import (
    AcceptInvitationView,
    InvitationsView,
    InvitationView,
    MembersView,
    MemberView,
    OwnershipView,
)
from tenants.api.views import (
    MeView,
    SignupView,
    TenantDetailView,
    TenantListView,
    TenantRestoreView,
)

app_name = "api"
urlpatterns = [
    path("signup/", SignupView.as_view(), name="signup"),
    path("auth/token/", TokenView.as_view(), name="token"),
    path("auth/logout/", LogoutView.as_view(), name="logout"),
    path("auth/logout-all/", LogoutAllView.as_view(), name="logout-all"),
    path(
        "auth/email-change/confirm/", EmailChangeConfirmView.as_view(), name="email-change-confirm"
    ),
    path("auth/password-reset/", PasswordResetView.as_view(), name="password-reset"),
    path(
        "auth/password-reset/confirm/",
        PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("auth/tokens/", TokenListView.as_view(), name="tokens"),
    path("auth/verify-email/", VerifyEmailView.as_view(), name="verify-email"),
    path("auth/verify-email/resend/", ResendVerificationView.as_view(), name="verify-email-resend"),
    path("me/", MeView.as_view(), name="me"),
    path("me/email/", EmailChangeView.as_view(), name="me-email"),
    path("tenants/", TenantListView.as_view(), name="tenant-list"),
    path("tenants/<str:tenant_id>/", TenantDetailView.as_view(), name="tenant-detail"),
    path("tenants/<str:tenant_id>/restore/", TenantRestoreView.as_view(), name="tenant-restore"),
    path("tenants/<str:tenant_id>/exports/", TenantExportsView.as_view(), name="tenant-exports"),
    path(
        "tenants/<str:tenant_id>/exports/<str:export_id>/",
        TenantExportView.as_view(),
        name="tenant-export",
    ),
    path("tenants/<str:tenant_id>/domains/", TenantDomainsView.as_view(), name="tenant-domains"),
    path(
        "tenants/<str:tenant_id>/domains/<str:domain>/",
        TenantDomainView.as_view(),
        name="tenant-domain",
    ),
    path("tenants/<str:tenant_id>/members/", MembersView.as_view(), name="tenant-members"),
    path(
        "tenants/<str:tenant_id>/members/<str:user_id>/",
        MemberView.as_view(),
        name="tenant-member",
    ),
    path("tenants/<str:tenant_id>/ownership/", OwnershipView.as_view(), name="tenant-ownership"),
    path(
        "tenants/<str:tenant_id>/invitations/",
        InvitationsView.as_view(),
        name="tenant-invitations",
    ),
    path(
        "tenants/<str:tenant_id>/invitations/<str:invitation_id>/",
        InvitationView.as_view(),
        name="tenant-invitation",
    ),
    path("invitations/accept/", AcceptInvitationView.as_view(), name="invitation-accept"),
    path("exports/<str:token>/", ExportDownloadView.as_view(), name="export-download"),
]
