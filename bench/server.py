"""The product served by gunicorn for a benchmark: a fresh database (the embedded PostgreSQL
unless DATABASE_URL names one), migrated, with the bench settings (no throttling)."""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from devstack.localservices import (
    LOCAL_DIR,
    ensure_database,
    free_port,
    start_postgres,
    stop_process_group,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def served(database: str, *, workers: int, threads: int, **env_extra: str) -> Iterator[int]:
    """Yield the port of a gunicorn serving the product against database ``database``."""
    server = gunicorn = None
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
        **env_extra,
    }
    try:
        if not env.get("DATABASE_URL"):
            server = start_postgres(LOCAL_DIR / "pg-bench")
            env["DATABASE_URL"] = ensure_database(server, database, fresh=True)
        env.setdefault("TEMPORAL_ADDRESS", "127.0.0.1:1")  # the web tier must never need it
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True)  # noqa: S603
        port = free_port()
        gunicorn = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", port, timeout=30, proc=gunicorn)
        yield port
    finally:
        if gunicorn is not None:
            stop_process_group(gunicorn)
        if server is not None:
            server.cleanup()
