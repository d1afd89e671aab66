"""`make dev`: the whole product on one machine, from nothing but Python.

Starts PostgreSQL (embedded, data in .local/postgres, unless DATABASE_URL is set) and the
Temporal dev server (Web UI on, fairness on, state in .local/temporal.db, unless
TEMPORAL_ADDRESS is set), migrates, then runs the Temporal worker and the web server.
Ctrl-C or SIGTERM stops every process it started.
"""

import os
import signal
import subprocess
import sys
import time

from config.localservices import (
    DEV_ENV_FILE,
    LOCAL_DIR,
    PROJECT_DIR,
    TemporalDevServer,
    ensure_database,
    free_port,
    port_is_free,
    start_postgres,
    stop_process_group,
)

WEB_PORT = int(os.environ.get("DEV_WEB_PORT", "8000"))


class Shutdown(Exception):
    pass


def _raise_shutdown(signum, frame):
    raise Shutdown(signal.Signals(signum).name)


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(PROJECT_DIR / "manage.py"), *args]


def main() -> int:
    signal.signal(signal.SIGTERM, _raise_shutdown)
    signal.signal(signal.SIGINT, _raise_shutdown)
    if not port_is_free(WEB_PORT):
        _say(f"port {WEB_PORT} is in use; stop what runs there or set DEV_WEB_PORT.")
        return 2
    LOCAL_DIR.mkdir(exist_ok=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "PYTHONUNBUFFERED": "1"}
    postgres = temporal = None
    children: list[tuple[str, subprocess.Popen]] = []
    try:
        if not env.get("DATABASE_URL"):
            postgres = start_postgres(LOCAL_DIR / "postgres")
            env["DATABASE_URL"] = ensure_database(postgres, "tenantflow")
            _say(f"PostgreSQL (embedded, data in {LOCAL_DIR / 'postgres'}) is up")
        if not env.get("TEMPORAL_ADDRESS"):
            temporal = TemporalDevServer(
                port=7233 if port_is_free(7233) else free_port(),
                ui_port=8233 if port_is_free(8233) else free_port(),
                db_file=LOCAL_DIR / "temporal.db",
                headless=False,
                log_file=LOCAL_DIR / "temporal.log",
            ).start()
            env["TEMPORAL_ADDRESS"] = temporal.address
            env["TEMPORAL_UI_URL"] = temporal.ui_url
            _say(f"Temporal dev server is up on {temporal.address}")
        DEV_ENV_FILE.write_text(
            "# Written by `make dev`; read by config/settings/local.py.\n"
            + "".join(
                f"{key}={env[key]}\n"
                for key in ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_UI_URL")
                if env.get(key)
            )
        )
        subprocess.run(_manage("migrate", "--noinput"), env=env, check=True)  # noqa: S603
        for name, cmd in (
            ("worker", _manage("run_temporal_worker", "--sync-schedules")),
            ("web", _manage("runserver", f"127.0.0.1:{WEB_PORT}")),
        ):
            proc = subprocess.Popen(cmd, env=env, start_new_session=True)  # noqa: S603
            children.append((name, proc))
        ui = env.get("TEMPORAL_UI_URL", "http://localhost:8233")
        _say("ready:")
        _say(f"  app          http://localhost:{WEB_PORT}/")
        _say(f"  tenants      http://<subdomain>.localhost:{WEB_PORT}/")
        _say(f"  health       http://localhost:{WEB_PORT}/healthz")
        _say(f"  admin        http://localhost:{WEB_PORT}/admin/")
        _say("               (a login: .venv/bin/python manage.py createsuperuser)")
        _say(f"  Temporal UI  {ui}")
        _say("Ctrl-C stops everything.")
        parent = os.getppid()
        while True:
            if os.getppid() != parent:  # whoever started us is gone: do not linger
                raise Shutdown("parent exited")
            for name, proc in children:
                if proc.poll() is not None:
                    _say(f"{name} exited with {proc.returncode}; stopping the rest.")
                    return 1
            time.sleep(0.5)
    except Shutdown as stop:
        _say(f"{stop}: stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        _say(f"{' '.join(exc.cmd[1:3])} failed with exit code {exc.returncode}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for _name, proc in reversed(children):
            stop_process_group(proc, timeout=15)
        if temporal is not None:
            temporal.stop()
        if postgres is not None:
            postgres.cleanup()
        DEV_ENV_FILE.unlink(missing_ok=True)
        _say("stopped")


if __name__ == "__main__":
    sys.exit(main())
