"""Validation of the tenants settings, run once at start-up from ``AppConfig.ready()``."""

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django_tenants.utils import get_public_schema_name

from tenants.models import PoolSchema
from tenants.validators import validate_schema_name

# Every tenant's schema is ``t_<uuid hex>`` (``tenants.models.schema_name_for``).
TENANT_SCHEMA_RE = re.compile(r"^t_[0-9a-f]{32}\Z")


def template_schema_problem(name: str) -> str | None:
    """Why ``name`` cannot be the template schema, or None. The template is dropped and
    rebuilt when a migration changes and its dump is copied into every new tenant: the
    public schema (users, token hashes) or a tenant's schema would be destroyed or leaked."""
    try:
        validate_schema_name(name)
    except ValidationError as exc:
        return " ".join(exc.messages)
    if name == get_public_schema_name():
        return "it is the public schema, which holds every tenant's users and tokens"
    if TENANT_SCHEMA_RE.match(name):
        return "it is named like a tenant's schema (t_<uuid hex>)"
    if name.startswith(PoolSchema.PREFIX):
        return f"it is named like a pool schema ({PoolSchema.PREFIX}<hex>), which are dropped"
    return None


def tenant_databases_problem(databases: dict, defined: dict) -> str | None:
    """Why ``TENANT_DATABASES`` cannot be used with ``DATABASES`` ``defined``, or None."""
    if "default" not in databases:
        return "it must name 'default', which holds the shared data"
    for alias, options in databases.items():
        if alias not in defined:
            return f"{alias!r} is not in DATABASES"
        if "tenants" not in defined[alias].get("ENGINE", ""):
            return f"{alias!r} must use django-tenants' backend (django_tenants.postgresql_backend)"
        weight = options.get("WEIGHT")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            return f"{alias!r} has WEIGHT {weight!r}: a whole number >= 1"
    if not any(options.get("OPEN") for options in databases.values()):
        return "every database is closed to new tenants"
    return None


def validate_settings() -> None:
    if problem := tenant_databases_problem(settings.TENANT_DATABASES, settings.DATABASES):
        raise ImproperlyConfigured(f"TENANT_DATABASES cannot be used: {problem}.")
    name = settings.TENANT_TEMPLATE_SCHEMA
    if problem := template_schema_problem(name):
        raise ImproperlyConfigured(
            f"TENANT_TEMPLATE_SCHEMA={name!r} cannot be the template schema: {problem}."
        )
