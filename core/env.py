"""Typed reads of environment variables for the settings modules, and of the KEY=VALUE file
(``DEV_ENV_FILE``) that `make dev` leaves for commands run in other terminals.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value cannot be
used, so a misconfiguration stops the process at start-up instead of at the first request.
"""

import ipaddress
import math
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Written by `make dev` with the addresses of what it started; read by the local settings.
DEV_ENV_FILE = Path(__file__).resolve().parent.parent / ".local" / "dev.env"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of ``path`` (no quoting rules); {} when the file does not exist."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


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


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ImproperlyConfigured(f"{name}={raw!r} must be a number of at least {minimum}.")
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


def env_choice(name: str, default: str, choices: tuple[str, ...], *, upper: bool = True) -> str:
    value = env_str(name, default).strip()
    value = value.upper() if upper else value.lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_pairs(name: str) -> dict[str, str]:
    """``NAME="a=x b=y"`` (pairs separated by spaces, commas or newlines) -> ``{"a": "x",
    "b": "y"}``; an item without ``=`` or a key given twice is refused."""
    pairs: dict[str, str] = {}
    for item in re.split(r"[\s,]+", os.environ.get(name, "").strip()):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ImproperlyConfigured(f"{name}: {item!r} is not key=value.")
        if key in pairs:
            raise ImproperlyConfigured(f"{name} names {key!r} twice.")
        pairs[key] = value
    return pairs


def tenant_databases_from_env(aliases: list[str]) -> dict[str, dict]:
    """``TENANT_DATABASES``: ``{alias: {"WEIGHT": int, "OPEN": bool}}`` for every database
    alias, from TENANT_DATABASE_WEIGHTS (``alias=weight …``, default 1) and
    TENANT_DATABASES_CLOSED (``alias,…``: no new tenants placed there)."""
    weights = env_pairs("TENANT_DATABASE_WEIGHTS")
    closed = set(env_list("TENANT_DATABASES_CLOSED", []))
    for name, given in (
        ("TENANT_DATABASE_WEIGHTS", set(weights)),
        ("TENANT_DATABASES_CLOSED", closed),
    ):
        if unknown := sorted(given - set(aliases)):
            raise ImproperlyConfigured(
                f"{name} names {', '.join(unknown)}: not a database "
                f"(the databases are {', '.join(aliases)})."
            )
    databases = {}
    for alias in aliases:
        try:
            weight = int(weights.get(alias, "1"))
        except ValueError:
            weight = 0
        if weight < 1:
            raise ImproperlyConfigured(
                f"TENANT_DATABASE_WEIGHTS: {alias}={weights[alias]} must be a whole number >= 1."
            )
        databases[alias] = {"WEIGHT": weight, "OPEN": alias not in closed}
    if not any(options["OPEN"] for options in databases.values()):
        raise ImproperlyConfigured(
            "TENANT_DATABASES_CLOSED closes every database: new tenants would have none."
        )
    return databases


def database_pool_from_env() -> dict:
    """Options of Django's psycopg connection pool (one pool per process), from
    DATABASE_POOL_MIN_SIZE / _MAX_SIZE / _TIMEOUT.

    The pool bounds what one process can hold: threads that come and go (runserver's one per
    request, the worker's activity threads) borrow a connection and give it back, instead
    of each keeping its own until PostgreSQL runs out of connections. A thread that finds
    every connection lent waits up to the timeout (seconds), then fails with a database error.
    """
    min_size = env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0)
    max_size = env_int("DATABASE_POOL_MAX_SIZE", 25, minimum=1)
    if max_size < min_size:
        raise ImproperlyConfigured(
            f"DATABASE_POOL_MAX_SIZE={max_size} must be at least DATABASE_POOL_MIN_SIZE={min_size}."
        )
    timeout = env_float("DATABASE_POOL_TIMEOUT", 5.0, minimum=0.1)
    from core.db import check_connection  # bounds the check by the request's deadline

    return {
        "min_size": min_size,
        "max_size": max_size,
        "timeout": timeout,
        "check": check_connection,
    }


# libpq keywords every connection gets unless the URL sets them: a server that does not answer
# a new connection fails it after DATABASE_CONNECT_TIMEOUT seconds, and a TCP peer that is
# gone (not merely slow) is noticed by keepalives within about 30 s (libpq ignores these on
# a unix socket).
KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}


def database_connect_timeout_from_env() -> int:
    """DATABASE_CONNECT_TIMEOUT: seconds a new connection may take (libpq counts 2 at least)."""
    return env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=2)


def database_from_url(
    url: str,
    *,
    name: str = "DATABASE_URL",
    pool: dict | None = None,
    connect_timeout: int | None = None,
) -> dict:
    """Django DATABASES entry for a ``postgres://`` URL, using django-tenants' backend.

    With ``pool`` (see ``database_pool_from_env``) connections come from Django's psycopg
    pool and go back to it when Django closes them (CONN_MAX_AGE is then 0, as the pool
    requires); without it each connection is kept for 60 s by the thread that opened it.

    ``postgresql://user:pass@host:5432/db`` and the socket form
    ``postgresql://user@/db?host=/path/to/socket-dir`` are both accepted; other query
    parameters (``sslmode=require``…) become connection OPTIONS.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(f"{name} must be a postgres:// URL, not {parts.scheme!r}.")
    options = dict(parse_qsl(parts.query))
    if connect_timeout:
        options = {"connect_timeout": str(connect_timeout), **KEEPALIVES, **options}
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
        "OPTIONS": {**options, "pool": pool} if pool else options,
        "CONN_MAX_AGE": 0 if pool else 60,
        "CONN_HEALTH_CHECKS": True,
    }


def split_host_port(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) -> (host, port); ValueError when it is not."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return host, int(port)


def env_address(name: str) -> str:
    """An optional ``host:port`` to listen on ("" when unset or empty)."""
    value = env_str(name, "").strip()
    if value:
        try:
            split_host_port(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}={value!r} must be host:port, e.g. 127.0.0.1:9464 (port 1-65535)."
            ) from None
    return value


def env_networks(name: str, default: list[str]) -> list:
    """Comma-separated IP addresses or networks (``10.0.0.0/8``, ``::1``)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)."
            ) from None
    return networks


def env_nameservers(name: str) -> list[tuple[str, int]]:
    """Comma-separated DNS servers, ``ip`` (port 53) or ``ip:port`` (``[::1]:53`` for IPv6),
    as ``[(ip, port)]``; ``[]`` when unset or empty."""
    servers = []
    for item in env_list(name, []):
        host, port = item, 53
        if item.count(":") == 1 or item.startswith("["):
            try:
                host, port = split_host_port(item)
            except ValueError:
                host = ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not ip or ip:port (e.g. 127.0.0.1:5353, [::1]:53)."
            ) from None
        servers.append((host, port))
    return servers
