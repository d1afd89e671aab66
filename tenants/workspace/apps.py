from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """The tables every tenant schema holds (the app in TENANT_APPS)."""

    name = "tenants.workspace"
    label = "workspace"
    verbose_name = "Workspace (per tenant)"
