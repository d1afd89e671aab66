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
    """Point Django at an embedded PostgreSQL unless DATABASE_URL names a server."""
    if os.environ.get("DATABASE_URL"):
        yield
        return
    from django.conf import settings

    server = start_postgres(LOCAL_DIR / "pg-test")
    db = settings.DATABASES["default"]
    for key, value in database_from_url(server.get_uri(db["NAME"])).items():
        if key in {"HOST", "PORT", "USER", "PASSWORD"}:
            db[key] = value
    yield
    server.cleanup()  # stops it now rather than at interpreter exit


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
