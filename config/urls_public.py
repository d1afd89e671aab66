"""URLs of the public host (TENANT_BASE_DOMAIN): admin, health, and later the signup API."""

from django.contrib import admin
from django.urls import path

from config.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
