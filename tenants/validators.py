"""Validation of tenant identifiers. Pure functions: they run before any SQL does."""

import re

from django.core.exceptions import ValidationError

# One DNS label, lower case only: letters, digits and inner hyphens, 1-63 characters.
SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# Hosts the product itself uses, and names that would confuse people or mail systems.
RESERVED_SUBDOMAINS = frozenset(
    {
        "public",
        "www",
        "admin",
        "api",
        "app",
        "static",
        "media",
        "assets",
        "mail",
        "smtp",
        "imap",
        "pop",
        "ftp",
        "ns1",
        "ns2",
        "dns",
        "status",
        "health",
        "healthz",
        "support",
        "help",
        "docs",
        "blog",
        "dashboard",
        "auth",
        "login",
        "signup",
        "account",
        "accounts",
        "billing",
        "temporal",
        "internal",
        "root",
        "postgres",
        "template",
        "localhost",
    }
)
# PostgreSQL schema names the product may use: unquoted-identifier safe, never pg_*.
SCHEMA_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
RESERVED_SCHEMAS = frozenset({"public", "information_schema"})


def validate_subdomain(value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("Enter a subdomain.", code="required")
    if len(value) > 63:
        raise ValidationError("A subdomain has at most 63 characters.", code="max_length")
    if value != value.lower():
        raise ValidationError("Use lower-case letters only.", code="case")
    if not SUBDOMAIN_RE.match(value):
        raise ValidationError(
            "Use lower-case letters, digits and hyphens; start and end with a letter or digit.",
            code="invalid",
        )
    if value in RESERVED_SUBDOMAINS or value.startswith(("pg-", "xn--")):
        raise ValidationError(f"“{value}” is reserved.", code="reserved")


def validate_schema_name(value: str) -> None:
    if not isinstance(value, str) or not SCHEMA_NAME_RE.match(value):
        raise ValidationError(
            "A schema name is 1-63 lower-case letters, digits or underscores, "
            "not starting with a digit.",
            code="invalid",
        )
    if value.startswith("pg_") or value in RESERVED_SCHEMAS:
        raise ValidationError(f"“{value}” is a reserved schema name.", code="reserved")
