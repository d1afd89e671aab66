"""The data every new tenant starts with. Seeding is idempotent (get_or_create)."""

from tenants.workspace.models import Project, Setting

DEFAULT_SETTINGS = {"time_zone": "UTC", "locale": "en", "week_starts_on": "monday"}
WELCOME_PROJECT = "Getting started"


def seed_defaults() -> None:
    """Create the default settings and the welcome project in the current schema."""
    for key, value in DEFAULT_SETTINGS.items():
        Setting.objects.get_or_create(key=key, defaults={"value": value})
    Project.objects.get_or_create(
        name=WELCOME_PROJECT, defaults={"description": "Your first project."}
    )
