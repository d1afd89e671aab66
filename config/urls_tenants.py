"""URLs served on a tenant's host (<subdomain>.<TENANT_BASE_DOMAIN>), in its schema."""

from django.urls import path

from config.views import tenant_home

urlpatterns = [
    path("", tenant_home, name="tenant-home"),
]

handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
