"""Typed reads of environment variables for the settings modules.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value cannot be
used, so a misconfiguration stops the process at start-up instead of at the first request.
"""

import os
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return default
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():  # unset or empty: the default
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


# DRF reads the count and the unit's first letter: 5/s, 30/min, 20/hour, 1000/days…
_RATE = re.compile(r"^[1-9][0-9]*/[smhd][a-z]*$")


def env_rate(name: str, default: str) -> str:
    """A Django REST framework throttle rate: ``<count>/<second|minute|hour|day>``."""
    value = env_str(name, default).strip()
    if not _RATE.match(value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate like 20/hour (count/second, minute, hour or day)."
        )
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).strip().upper()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str, *, name: str = "DATABASE_URL") -> dict:
    """Django DATABASES entry for a ``postgres://`` URL, using django-tenants' backend.

    ``postgresql://user:pass@host:5432/db`` and the socket form
    ``postgresql://user@/db?host=/path/to/socket-dir`` are both accepted; other query
    parameters (``sslmode=require``…) become connection OPTIONS.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(f"{name} must be a postgres:// URL, not {parts.scheme!r}.")
    options = dict(parse_qsl(parts.query))
    host = options.pop("host", None) or unquote(parts.hostname or "")
    db_name = unquote(parts.path.lstrip("/"))
    if not db_name:
        raise ImproperlyConfigured(f"{name} names no database (postgres://…/<name>).")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port.") from None
    return {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": db_name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
