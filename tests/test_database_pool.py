"""Connections come from a bounded pool, carry no tenant schema to their next user, and
let the development server answer 100 concurrent clients."""

import copy
import os
from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django_tenants.postgresql_backend.base import DatabaseWrapper

from bench.concurrent_get import failures, fire
from devstack import WEB_WORKERS


def _pooled_wrapper(alias: str, size: int) -> DatabaseWrapper:
    settings_dict = copy.deepcopy(connection.settings_dict)
    settings_dict["OPTIONS"]["pool"] = {"min_size": size, "max_size": size, "timeout": 5}
    return DatabaseWrapper(settings_dict, alias)


def _show(wrapper: DatabaseWrapper) -> tuple[int, str]:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_setting('search_path')")
        return cursor.fetchone()


@pytest.mark.django_db
def test_a_pooled_connection_carries_no_schema_to_its_next_user():
    """django-tenants sets search_path on the first cursor after each connect; a pooled
    connection keeps the session's search_path, so that must hold for a reused one too."""
    tenant_side, public_side = _pooled_wrapper("pool_probe", 1), _pooled_wrapper("pool_probe", 1)
    try:
        tenant_side.set_schema("some_tenant")
        pid, path = _show(tenant_side)
        assert path.startswith("some_tenant")
        with tenant_side.cursor() as cursor:  # a change django-tenants does not know about
            cursor.execute("SELECT set_config('search_path', 'pg_catalog', false)")
        tenant_side.close()  # back to the pool (of one)

        assert _show(public_side) == (pid, "public")  # the same server process, reset
        public_side.close()
        assert _show(tenant_side)[0] == pid
        assert _show(tenant_side)[1].startswith("some_tenant")  # set again, not cached
    finally:
        tenant_side.close()
        public_side.close()
        public_side.close_pool()


def _database_url(db: dict, **query: str) -> str:
    """A DATABASE_URL for the settings dict ``db`` (TCP or unix socket)."""
    auth = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@"
    if db["HOST"].startswith("/"):
        netloc, query = auth, {"host": db["HOST"], **query}
    else:
        netloc = f"{auth}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    return f"postgresql://{netloc}/{quote(db['NAME'])}?{urlencode(query)}"


def _server_connections(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_dev_web_server_answers_100_concurrent_clients_within_its_pool(dev_web_server):
    """`make dev`'s web server (its very command, local settings) against the test database:
    three bursts of 100 concurrent GET /healthz (a query each) all get 200, none is reset,
    and the server never holds more connections than its workers' pools allow."""
    app = f"load-test-{os.getpid()}"
    port, log = dev_web_server(
        DATABASE_URL=_database_url(connection.settings_dict, application_name=app),
        DATABASE_POOL_MIN_SIZE="2",
        DATABASE_POOL_MAX_SIZE="8",
    )
    for burst in range(3):
        counts = fire(f"http://127.0.0.1:{port}/healthz", 100)
        assert counts == {"200": 100}, (burst, counts, log.read_text()[-3000:])
        assert failures(counts) == 0
        assert _server_connections(app) <= 8 * WEB_WORKERS
