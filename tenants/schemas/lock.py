"""The per-schema lock: migrating and dropping one schema never overlap, in any process."""

import contextlib
import threading
from collections.abc import Iterator

import psycopg

from core.db import libpq_params
from tenants.databases import schema_database

# Advisory locks of this project's schema DDL live under this first key (the second is the
# schema name's hash): distinct from any other use of advisory locks in the database.
_SCHEMA_LOCKS = 7301
_held = threading.local()


@contextlib.contextmanager
def schema_lock(name: str) -> Iterator[None]:
    """Hold schema ``name``'s lock: migrating and dropping one schema are serialised across
    every process (a fleet run, provisioning, deletion). Re-entrant in one thread.

    A session lock on a connection of its own: Django's connection cannot hold it, since
    ``migrate_schemas`` closes that connection midway (with the pool, the lock would stay
    with a pooled connection another thread borrows next). Released when the block ends
    (free for the next holder as soon as it has), or by PostgreSQL when a killed worker's
    connection goes.
    """
    held = _held.__dict__.setdefault("names", set())
    if name in held:
        yield
        return
    key = [_SCHEMA_LOCKS, name]
    with psycopg.connect(**libpq_params(schema_database()), autocommit=True) as side:
        side.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
        held.add(name)
        try:
            yield
        finally:
            held.discard(name)
            # Unlocked here, not by closing: a closed connection's server process ends, and
            # frees its locks, after the client has moved on, so the next holder (or a
            # check of pg_locks) would find the lock still taken for a moment. A connection
            # that is already broken has lost the lock with its session.
            with contextlib.suppress(psycopg.OperationalError):
                side.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
