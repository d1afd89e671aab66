"""The test kit's fixtures, for every test.

Session-wide real services: PostgreSQL and the Temporal servers (the dev server, and the
time-skipping test server). Each is started once per test session on a private socket /
free port, unless the environment names one (DATABASE_URL, TEMPORAL_ADDRESS), and stopped
at the end; a Temporal server is started only for a test that asks for it, and every such
test is marked ``temporal`` (``pytest -m "not temporal"`` starts none).

Then small fixtures to compose: ``owner`` (a user; the database mode is the test's own
choice: ask for ``transactional_db`` when other threads or processes must see the rows),
per-test queues, schema clean-up, and ``start_worker`` for the worker as a real process.
Factories are in tests/factories.py; waiting is tests/kit.py's ``wait_until``.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from core.env import database_from_url
from devstack.localservices import (
    LOCAL_DIR,
    PROJECT_DIR,
    TemporalDevServer,
    start_postgres,
    venv_binary,
)

# A test that uses one of these needs a Temporal server; it is marked ``temporal``.
TEMPORAL_FIXTURES = {
    "temporal_address",
    "temporal",
    "time_skipping_env",
    "start_worker",
    "dev_web_server",
}


# A test that uses one of these reaches the database.
DATABASE_FIXTURES = {"db", "transactional_db", "live_server"}


def pytest_collection_modifyitems(items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if TEMPORAL_FIXTURES & fixtures:
            item.add_marker(pytest.mark.temporal)
        _with_every_database(item, fixtures)


def _with_every_database(item, fixtures: set[str]) -> None:
    """A test that reaches the database may reach every one (``databases="__all__"``):
    schema work, the pool and the fleet go to each tenant database, whichever the test's
    tenants are in."""
    marker = item.get_closest_marker("django_db")
    if marker is None and not DATABASE_FIXTURES & fixtures:
        return
    if marker is not None and "databases" in marker.kwargs:
        return
    args, kwargs = (marker.args, marker.kwargs) if marker is not None else ((), {})
    item.add_marker(pytest.mark.django_db(*args, **kwargs, databases="__all__"), append=False)


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
    for alias in other_tenant_databases():  # same server, a test database of their own,
        other = settings.DATABASES[alias]  # created before the default one (django_db_setup)
        other.update({key: db[key] for key in ("HOST", "PORT", "USER", "PASSWORD")})
        other.setdefault("TEST", {}).update(NAME=f"{prefix}{os.getpid()}_{alias}", DEPENDENCIES=[])
    db["TEST"]["DEPENDENCIES"] = other_tenant_databases()
    yield
    if server is not None:
        server.cleanup()  # stops it now rather than at interpreter exit


def other_tenant_databases() -> list[str]:
    from django.conf import settings

    return [alias for alias in settings.TENANT_DATABASES if alias != "default"]


@pytest.fixture(scope="session")
def django_db_setup(
    request, django_test_environment, django_db_blocker, django_db_modify_db_settings
):
    """Every database of the settings created for the session (the other tenant databases
    too, whether or not a collected test names them: a worker's pool and fleet reach every
    one; first, so that the default database's ``migrate`` finds them), and destroyed at the
    end. The default one as `manage.py migrate` leaves it under the local and production
    settings: with the table of their database cache (the tests' own settings cache in
    memory), for the tests that run the dev web server against it."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings
    from django.test.utils import setup_databases, teardown_databases

    database_cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
        }
    }
    with django_db_blocker.unblock():
        created = setup_databases(
            verbosity=request.config.option.verbose, interactive=False, aliases=settings.DATABASES
        )
        with override_settings(CACHES=database_cache):
            call_command("createcachetable", verbosity=0)
    yield
    with django_db_blocker.unblock():
        teardown_databases(created, verbosity=request.config.option.verbose)


@pytest.fixture
def empty_database_cache(transactional_db):
    """The database cache's table emptied (it is no model: flushing leaves it), so that the
    throttle counts of a dev web server started before do not reach this test's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_cache")


def _drop_test_databases_of_dead_sessions(db: dict, prefix: str) -> None:
    import psycopg
    from psycopg import sql

    params = {
        "dbname": "postgres",
        "user": db["USER"],
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "password": db["PASSWORD"] or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"]
        ).fetchall()
        for (name,) in names:
            pid = name.removeprefix(prefix).partition("_")[0]  # <pid>, or <pid>_<alias>
            if pid.isdigit() and not _alive(int(pid)):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


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

    # The SDK gives the server 5 s to answer; on a busy 2-core machine its first start can
    # take longer. Another try on another port, rather than every timer test erroring.
    for attempt in range(1, 4):
        try:
            env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=venv_binary("temporal-test-server")
            )
            break
        except RuntimeError as exc:
            if attempt == 3 or "did not start" not in str(exc):
                raise
    try:
        yield env
    finally:
        await env.shutdown()


# --- small fixtures to compose ---------------------------------------------------------------


@pytest.fixture
def spans():
    """Tracing on, exporting to memory as each span ends; off again afterwards. Connections
    opened before (or while) tracing was installed keep what they had: the pool is emptied
    before and after, so statements use connections made while it is on."""
    from django.db import connection
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from core import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    connection.close()
    connection.close_pool()
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        connection.close()
        connection.close_pool()
        provider.shutdown()


@pytest.fixture
def dns_server(settings):
    """A real DNS server on a free loopback UDP port, the only nameserver custom domains are
    looked up at (``CUSTOM_DOMAIN_NAMESERVERS``); see ``tests/dns_server.py``."""
    from tests.dns_server import LoopbackDns

    server = LoopbackDns()
    settings.CUSTOM_DOMAIN_NAMESERVERS = [server.address]
    yield server
    server.stop()


@pytest.fixture
def owner(db):
    """A user to own tenants (logs in with ``tests.factories.PASSWORD``)."""
    from tests.factories import UserFactory

    return UserFactory(email="owner@example.com")


@pytest.fixture
def acme(owner):
    """An active tenant ``acme`` with its primary domain ``acme.localhost`` (no schema)."""
    from tenants.models import TenantStatus
    from tenants.services.domains import domain_create_primary
    from tests.factories import TenantFactory

    tenant = TenantFactory(owner=owner, subdomain="acme", status=TenantStatus.ACTIVE)
    domain_create_primary(tenant_id=tenant.pk)
    return tenant


@pytest.fixture
def queue_prefix(settings) -> str:
    """Queues of this test's own, one shard: the server keeps tasks of earlier tests."""
    settings.TEMPORAL_QUEUE_PREFIX = f"q{uuid.uuid4().hex[:10]}"
    settings.TEMPORAL_QUEUE_SHARDS = 1
    return settings.TEMPORAL_QUEUE_PREFIX


@pytest.fixture
def drop_tenant_schemas(transactional_db):
    """Drop the tenant schemas a test made (the database flush does not drop schemas)."""
    yield
    drop_schemas(r"^t_")


def drop_schemas(pattern: str) -> None:
    """Drop the schemas whose name matches ``pattern`` in every tenant database."""
    from django.conf import settings
    from django.db import connections

    for alias in settings.TENANT_DATABASES:
        connection = connections[alias]
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname ~ %s", [pattern])
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def active_tenant(drop_tenant_schemas, owner):
    """``active_tenant(subdomain)``: an active tenant with its schema (no workflow)."""
    from tenants.models import TenantStatus
    from tenants.schemas.create import create_schema
    from tests.factories import TenantFactory

    def make(subdomain: str):
        tenant = TenantFactory(owner=owner, subdomain=subdomain, status=TenantStatus.ACTIVE)
        create_schema(tenant.schema_name)
        return tenant

    return make


@pytest.fixture
def schemas_by_migrations(settings, monkeypatch, transactional_db):
    """No usable template snapshot and no schema pool, for this test and the workers it
    starts: provisioning's schema step goes the long way, the task-queue activity
    ``tenant_create_schema``. (The test database starts with a snapshot, which ``migrate``
    stores; a transactional test's flush deletes it, so without this fixture the path
    depends on the tests that ran before.)"""
    from tenants.models import SchemaTemplate

    settings.TENANT_SCHEMA_POOL_SIZE = 0
    monkeypatch.setenv("TENANT_SCHEMA_POOL_SIZE", "0")  # read by a worker process
    SchemaTemplate.objects.all().delete()


@pytest.fixture
def schema_pool(settings, transactional_db):
    """A warm schema pool of ``size`` (default 2) for this test, filled from a fresh template
    snapshot: ``schema_pool(size)`` returns the pool schemas' names. Every pool and tenant
    schema is dropped afterwards (the database flush does not drop schemas)."""
    from tenants import pool
    from tenants.schemas.snapshot import sync_template

    def fill(size: int = 2) -> list[str]:
        settings.TENANT_SCHEMA_POOL_SIZE = size
        assert sync_template() is not None, "no snapshot stored (is pg_dump missing?)"
        while pool.fill_one() is not None:
            pass
        return sorted(pool.PoolSchema.objects.values_list("name", flat=True))

    yield fill
    drop_schemas(r"^(pool|t)_")


# --- the worker as a real process ------------------------------------------------------------


def database_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    host = db["HOST"]
    if host.startswith("/"):
        return f"postgresql://{quote(db['USER'])}@/{db['NAME']}?host={quote(host)}"
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def dev_web_server(temporal_address, tmp_path):
    """`make dev`'s web server (its very command, local settings) against the test database:
    ``start(**environment)`` starts one, waits until it listens and returns ``(port, log)``;
    every one started is stopped after the test."""
    from devstack import web_server_command
    from devstack.localservices import free_port, stop_process_group, wait_for_port

    started: list[subprocess.Popen] = []

    def start(**environment: str) -> tuple[int, Path]:
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": database_url(),
            "TEMPORAL_ADDRESS": temporal_address,
            **environment,
        }
        log = tmp_path / f"web-{port}.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                web_server_command(port, reload=False),
                cwd=PROJECT_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(server)
        wait_for_port("127.0.0.1", port, timeout=20, proc=server)
        return port, log

    yield start
    for server in started:
        stop_process_group(server)


@pytest.fixture
def prefix() -> str:
    """A queue prefix of this test's own: the server remembers recent pollers of a queue."""
    return f"w{uuid.uuid4().hex[:10]}"


@pytest.fixture
def start_worker(transactional_db, temporal, tmp_path, prefix):
    """``start_worker(*args, **environment)`` runs ``manage.py run_temporal_worker *args``
    against this test's database and Temporal, on ``prefix`` with ``tests.workers.SHARDS``
    shards (the test settings unless ``environment`` says otherwise); returns the process
    and its log file. Processes still running at the end are killed."""
    from tests import workers

    procs = []

    def start(*args: str, **environment: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"worker-{len(procs)}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "TEMPORAL_ADDRESS": temporal,
            "TEMPORAL_QUEUE_SHARDS": str(workers.SHARDS),
            "TEMPORAL_QUEUE_PREFIX": prefix,
            **environment,
        }
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(PROJECT_DIR / "manage.py"), "run_temporal_worker", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_DIR,
            )
        procs.append(proc)
        return proc, log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
