"""The data every new tenant starts with. Seeding is idempotent (it skips what exists)."""

from tenants.workspace.models import Project, Setting

DEFAULT_SETTINGS = {"time_zone": "UTC", "locale": "en", "week_starts_on": "monday"}
WELCOME_PROJECT = "Getting started"


def seed_defaults() -> None:
    """Create the default settings and the welcome project in the current schema; those
    that exist are left as they are (idempotent: two statements, whatever is there)."""
    Setting.objects.bulk_create(
        [Setting(key=key, value=value) for key, value in DEFAULT_SETTINGS.items()],
        ignore_conflicts=True,  # the key is unique
    )
    Project.objects.bulk_create(
        [Project(name=WELCOME_PROJECT, description="Your first project.")],
        ignore_conflicts=True,  # the name is unique
    )
