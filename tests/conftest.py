"""Session-wide real services: PostgreSQL and the Temporal dev server.

Each is started once per test session on a private socket / free port, unless the
environment names one (DATABASE_URL, TEMPORAL_ADDRESS), and stopped at the end.
"""

import os

import pytest

from config.env import database_from_url
from config.localservices import LOCAL_DIR, TemporalDevServer, start_postgres, venv_binary


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Point Django at an embedded PostgreSQL unless DATABASE_URL names a server, with a
    test database of this session's own, so that two test runs never share one."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    server = None
    if not os.environ.get("DATABASE_URL"):
        server = start_postgres(LOCAL_DIR / "pg-test")
        for key, value in database_from_url(server.get_uri(db["NAME"])).items():
            if key in {"HOST", "PORT", "USER", "PASSWORD"}:
                db[key] = value
    prefix = f"test_{db['NAME']}_"
    _drop_test_databases_of_dead_sessions(db, prefix)
    db.setdefault("TEST", {})["NAME"] = f"{prefix}{os.getpid()}"
    yield
    if server is not None:
        server.cleanup()  # stops it now rather than at interpreter exit


def _drop_test_databases_of_dead_sessions(db: dict, prefix: str) -> None:
    import psycopg
    from psycopg import sql

    params = {"dbname": "postgres", "user": db["USER"], "host": db["HOST"] or None,
              "port": db["PORT"] or None, "password": db["PASSWORD"] or None}  # fmt: skip
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"]
        ).fetchall()
        for (name,) in names:
            pid = name.removeprefix(prefix)
            if pid.isdigit() and not _alive(int(pid)):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def temporal_address():
    """host:port of a running Temporal dev server (fairness enabled), for the whole session."""
    if address := os.environ.get("TEMPORAL_ADDRESS"):
        yield address
        return
    server = TemporalDevServer(log_file=LOCAL_DIR / "temporal-test.log").start()
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture
def temporal(settings, temporal_address) -> str:
    """Point the project's settings at the session's Temporal server; returns its address."""
    settings.TEMPORAL_ADDRESS = temporal_address
    return temporal_address


@pytest.fixture(scope="session")
async def time_skipping_env():
    """Temporal's time-skipping test server: timers of days complete at once."""
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()
