"""URLs served on a tenant's host (<subdomain>.<TENANT_BASE_DOMAIN>), in its schema."""

from django.urls import path

from config.views import tenant_home

urlpatterns = [
    path("", tenant_home, name="tenant-home"),
]

handler400 = "core.errors.bad_request"
handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error"
