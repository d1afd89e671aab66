"""Django's database settings for connections Django does not make itself."""

import psycopg
from django.db import connection

# Django's own objects among its connection parameters; everything else is libpq's.
_NOT_LIBPQ = {"cursor_factory", "context", "prepare_threshold"}


def libpq_params() -> dict[str, str]:
    """The default database's connection parameters as libpq keywords (host, port, TLS
    files, ``options``, a service name…), for a side connection (the relay's LISTEN) or a
    client program (``pg_dump``), so that they reach the database exactly as Django does."""
    params = connection.get_connection_params()
    return {key: str(value) for key, value in params.items() if key not in _NOT_LIBPQ and value}


def listen(channel: str, **defaults: str) -> psycopg.Connection:
    """A side connection (autocommit) that ``LISTEN``s on ``channel``, made with Django's
    connection parameters; ``defaults`` are libpq keywords that a configured value
    overrides (``connect_timeout="5"``). Raises ``psycopg.Error`` when it cannot be made."""
    listener = psycopg.connect(**{**defaults, **libpq_params()}, autocommit=True)
    try:
        listener.execute(f"LISTEN {channel}")
    except psycopg.Error:
        listener.close()
        raise
    return listener
