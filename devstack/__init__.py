"""`make dev` (``python -m devstack``): the whole product on one machine, from nothing but
Python.

Starts PostgreSQL (embedded, data in .local/postgres, unless DATABASE_URL is set; with
``DEV_TENANT_DATABASES=N``, N-1 more embedded servers in .local/postgres-tenants<i> holding
tenant schemas as ``tenants2``… unless TENANT_DATABASE_URLS is set) and the
Temporal dev server (Web UI on, fairness on, state in .local/temporal.db, unless
TEMPORAL_ADDRESS is set), migrates, then runs the Temporal worker and the web server.

It keeps them running: a worker, web server or Temporal dev server that exits is started
again after a back-off (1 s, doubling to 30 s, back to 1 s after 30 s of health), and so is
the embedded PostgreSQL when its postmaster is gone. Ctrl-C or SIGTERM stops every process
it started, including those it restarted.

The package is the dev tooling: this stack, the local services it and the test suite start
(``localservices``), their supervision (``supervisor``) and ``bootstrap.sh`` (`make venv`).
Nothing in the product imports it (an import contract in pyproject.toml).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from core.env import DEV_ENV_FILE
from core.tracing import exporter_names
from devstack.localservices import (
    LOCAL_DIR,
    PROJECT_DIR,
    TemporalDevServer,
    ensure_database,
    free_port,
    port_is_free,
    postgres_running,
    restart_postgres,
    start_postgres,
    stop_postgres,
    wait_for_port,
)
from devstack.supervisor import Backoff, Supervised

WEB_PORT = int(os.environ.get("DEV_WEB_PORT", "8000"))
# How many PostgreSQL servers hold tenant schemas (the first also holds the shared data).
TENANT_DATABASES = os.environ.get("DEV_TENANT_DATABASES", "1").strip()


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(PROJECT_DIR / "manage.py"), *args]


WEB_WORKERS, WEB_THREADS = 2, 8


def worker_command(env: dict[str, str]) -> list[str]:
    """The worker, with the schedules synced. With Worker Versioning on, each start makes
    its build current: ``make dev`` runs one worker, restarted with new code (a new build
    id) whenever it is restarted, and new runs must not wait for the build that stopped."""
    args = ["--sync-schedules"]
    if env.get("TEMPORAL_WORKER_VERSIONING", "").strip().lower() in {"1", "true", "yes", "on"}:
        args.append("--make-current")
    return _manage("run_temporal_worker", *args)


def web_server_command(port: int, *, reload: bool = True) -> list[str]:
    """gunicorn, not ``runserver``: a bounded set of threads (each holding at most one pooled
    connection) behind a real listen backlog, so a burst of clients queues instead of being
    reset (``runserver`` listens with a backlog of 10 and a thread per connection). It
    reloads on code changes, and DEBUG pages work as with ``runserver``."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WEB_WORKERS),
        "--threads",
        str(WEB_THREADS),
        "--backlog",
        "2048",
        "--timeout",
        "120",
        "--access-logfile",
        "-",
        *(["--reload"] if reload else []),
    ]


def web_env(env: dict[str, str]) -> dict[str, str]:
    """The web server's environment: gunicorn's worker processes sum their request metrics
    through an emptied PROMETHEUS_MULTIPROC_DIR (unless one is set already)."""
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        return env
    metrics_dir = LOCAL_DIR / "prometheus-web"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}


class Stop:
    """Set by SIGINT/SIGTERM. A flag, not an exception: an exception raised between a
    child's start and its registration would leave that child running after we exit."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self, signum, frame) -> None:
        self.reason = signal.Signals(signum).name

    def __bool__(self) -> bool:
        return self.reason is not None


class PostgresKeeper:
    """Starts the embedded PostgreSQL again, with back-off, when its postmaster is gone."""

    def __init__(self, server, *, clock=time.monotonic):
        self.server = server
        self.clock = clock
        self.backoff = Backoff()
        self.restart_at: float | None = None

    def check(self) -> None:
        now = self.clock()
        if self.restart_at is None:
            if postgres_running(self.server):
                return
            delay = self.backoff.next()
            _say(f"PostgreSQL is not running; restarting it in {delay:g} s")
            self.restart_at = now + delay
            return
        if now < self.restart_at:
            return
        try:
            restart_postgres(self.server)
        except Exception as exc:  # it may refuse while the old one's processes exit
            delay = self.backoff.next()
            _say(f"PostgreSQL did not start ({type(exc).__name__}); retrying in {delay:g} s")
            self.restart_at = self.clock() + delay
            return
        _say("PostgreSQL is up again")
        self.restart_at = None
        self.backoff.reset()


def supervise(
    children: list, stop: Stop, *, postgres: list[PostgresKeeper] = (), interval: float = 0.25
) -> None:
    """Keep ``children`` (and the PostgreSQL servers) running until ``stop`` is set or
    whoever started us is gone."""
    parent = os.getppid()
    while not stop:
        if os.getppid() != parent:
            stop.reason = "parent exited"
            break
        for keeper in postgres:
            keeper.check()
        for child in children:
            child.check()
        time.sleep(interval)


def stack_env(environ: Mapping[str, str], web_port: int) -> dict[str, str]:
    """The environment of every process the stack runs: local settings, and links in emails
    to the web server it runs (``PUBLIC_BASE_URL``, unless set) on whatever port that is."""
    return {
        "PUBLIC_BASE_URL": f"http://localhost:{web_port}",
        **environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "PYTHONUNBUFFERED": "1",
    }


def main() -> int:
    stop = Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not port_is_free(WEB_PORT):
        _say(f"port {WEB_PORT} is in use; stop what runs there or set DEV_WEB_PORT.")
        return 2
    LOCAL_DIR.mkdir(exist_ok=True)
    if not TENANT_DATABASES.isdigit() or int(TENANT_DATABASES) < 1:
        _say(f"DEV_TENANT_DATABASES={TENANT_DATABASES!r}: it must be a whole number, 1 or more.")
        return 2
    databases = int(TENANT_DATABASES)
    env = stack_env(os.environ, WEB_PORT)
    servers = []
    children: list[Supervised] = []
    try:
        if not env.get("DATABASE_URL"):
            servers.append(start_postgres(LOCAL_DIR / "postgres"))
            env["DATABASE_URL"] = ensure_database(servers[-1], "tenantflow")
            _say(f"PostgreSQL (embedded, data in {LOCAL_DIR / 'postgres'}) is up")
        if databases > 1 and not env.get("TENANT_DATABASE_URLS"):
            urls = []
            for number in range(2, databases + 1):
                data = LOCAL_DIR / f"postgres-tenants{number}"
                servers.append(start_postgres(data))
                urls.append(f"tenants{number}={ensure_database(servers[-1], 'tenantflow')}")
                _say(f"PostgreSQL for tenants{number} (embedded, data in {data}) is up")
            env["TENANT_DATABASE_URLS"] = " ".join(urls)
        if not env.get("TEMPORAL_ADDRESS") and not stop:
            server = TemporalDevServer(
                port=7233 if port_is_free(7233) else free_port(),
                ui_port=8233 if port_is_free(8233) else free_port(),
                db_file=LOCAL_DIR / "temporal.db",
                headless=False,
                log_file=LOCAL_DIR / "temporal.log",
            )
            temporal = Supervised(
                "Temporal dev server", [], say=_say, spawn=lambda _command: server.spawn()
            )
            children.append(temporal)
            temporal.start()
            wait_for_port("127.0.0.1", server.port, timeout=30, proc=temporal.proc)
            env["TEMPORAL_ADDRESS"] = server.address
            env["TEMPORAL_UI_URL"] = server.ui_url
            _say(f"Temporal dev server is up on {server.address} (log in {server.log_file})")
        DEV_ENV_FILE.write_text(
            "# Written by `make dev`; read by config/settings/local.py.\n"
            + "".join(
                f"{key}={env[key]}\n"
                for key in (
                    "DATABASE_URL",
                    "TENANT_DATABASE_URLS",
                    "TEMPORAL_ADDRESS",
                    "TEMPORAL_UI_URL",
                    "PUBLIC_BASE_URL",
                )
                if env.get(key)
            )
        )
        if not stop:
            subprocess.run(_manage("migrate", "--noinput"), env=env, check=True)  # noqa: S603
        for name, cmd, child_env in (
            ("worker", worker_command(env), env),
            ("web", web_server_command(WEB_PORT), web_env(env)),
        ):
            if stop:
                break
            child = Supervised(name, cmd, say=_say, env=child_env)
            children.append(child)
            child.start()
        if not stop:
            ui = env.get("TEMPORAL_UI_URL", "http://localhost:8233")
            _say("ready:")
            _say(f"  app          http://localhost:{WEB_PORT}/")
            _say(f"  tenants      http://<subdomain>.localhost:{WEB_PORT}/")
            _say(f"  health       http://localhost:{WEB_PORT}/healthz")
            _say(f"  admin        http://localhost:{WEB_PORT}/admin/")
            _say("               (a login: .venv/bin/python manage.py createsuperuser)")
            _say(f"  Temporal UI  {ui}")
            if exporter_names(env):  # the worker and the web server inherit OTEL_*
                where = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
                _say(f"  traces       OTEL_TRACES_EXPORTER={env['OTEL_TRACES_EXPORTER']} {where}")
            _say("A process that exits is restarted; Ctrl-C stops everything.")
        supervise(children, stop, postgres=[PostgresKeeper(server) for server in servers])
        _say(f"{stop.reason}: stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        _say(f"{' '.join(exc.cmd[1:3])} failed with exit code {exc.returncode}")
        return 0 if stop else 1
    except (RuntimeError, TimeoutError) as exc:
        _say(f"{exc}; stopping")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(children):
            child.stop(timeout=15)
        for server in servers:
            stop_postgres(server)
        DEV_ENV_FILE.unlink(missing_ok=True)
        _say("stopped")
