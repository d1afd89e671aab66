"""The JSON API on the public host, /api/v1/."""

from django.urls import path

from accounts.api.views import ResendVerificationView, TokenView, VerifyEmailView
from tenants.api.exports import ExportDownloadView, TenantExportsView, TenantExportView
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
    path("auth/verify-email/", VerifyEmailView.as_view(), name="verify-email"),
    path("auth/verify-email/resend/", ResendVerificationView.as_view(), name="verify-email-resend"),
    path("me/", MeView.as_view(), name="me"),
    path("tenants/", TenantListView.as_view(), name="tenant-list"),
    path("tenants/<str:tenant_id>/", TenantDetailView.as_view(), name="tenant-detail"),
    path("tenants/<str:tenant_id>/restore/", TenantRestoreView.as_view(), name="tenant-restore"),
    path("tenants/<str:tenant_id>/exports/", TenantExportsView.as_view(), name="tenant-exports"),
    path(
        "tenants/<str:tenant_id>/exports/<str:export_id>/",
        TenantExportView.as_view(),
        name="tenant-export",
    ),
    path("exports/<str:token>/", ExportDownloadView.as_view(), name="export-download"),
]
