"""The per-schema lock's release: real PostgreSQL."""

import pytest
from django.db import connection

from tenants.schemas import lock
from tenants.schemas.lock import schema_lock


def schema_locks_held() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s",
            [lock._SCHEMA_LOCKS],
        )
        return cursor.fetchone()[0]


class Failed(Exception):
    pass


@pytest.mark.parametrize("body_fails", [False, True])
def test_the_lock_is_free_before_its_connection_closes(db, monkeypatch, body_fails):
    # A closed connection's server process frees its locks after the client has moved on:
    # a lock left for the close to free is still taken, for a moment, when the block ends.
    connection.ensure_connection()  # the checks below open no connection of their own
    real_connect, at_close = lock.psycopg.connect, []

    def connect(*args, **kwargs):
        side = real_connect(*args, **kwargs)
        close = side.close

        def checked_close():
            at_close.append(schema_locks_held())
            close()

        side.close = checked_close
        return side

    monkeypatch.setattr(lock.psycopg, "connect", connect)
    try:
        with schema_lock("t_locked"):
            assert schema_locks_held() == 1
            if body_fails:
                raise Failed
    except Failed:
        pass
    assert at_close == [0]
    assert schema_locks_held() == 0
