"""Provisioning end to end: ``POST /api/v1/signup/`` answered ``202`` -> the tenant active.

What a new user waits for, with every real part running on this machine: the embedded
PostgreSQL, the Temporal dev server, gunicorn, and ``run_temporal_worker`` (workers for the
tenant and jobs queues, and the outbox relay). Two such stacks share one database and one
Temporal server, on queue prefixes of their own: one worker keeps no schema pool (the
template path), the other keeps a pool of ``--pool-size`` (the pool path). Signups alternate
between them, one at a time, so machine noise hits both paths alike; before each signup the
bench waits until the pool is full again (refills run between signups, not during them).
With ``--before GIT_REF`` two more stacks run the worker code of that commit, one per path
(``before``, ``before-pool``), in the same rotation: a baseline measured in the same run.

Latency = the tenant's ``provisioned_at`` (stamped by the worker in the transaction that
marks it active) - the wall clock when the 202 arrived; one machine, one clock. The run is
repeated with a generated 52-table tenant app (bench/wide_app.py) grafted onto the tenant
apps. Called by ``bench/provisioning.py --end-to-end``.
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import wide_app
from bench.stats import median_p95
from devstack.localservices import (
    LOCAL_DIR,
    TemporalDevServer,
    ensure_database,
    free_port,
    start_postgres,
    stop_process_group,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
PASSWORD = "correct horse battery staple"  # noqa: S105
WARM_UP = 3  # untimed signups per stack (first-call costs: imports, caches, connections)


class Stack:
    """One gunicorn and one worker process on queue prefix ``prefix``."""

    def __init__(
        self, env: dict, *, prefix: str, pool_size: int, log_dir: Path, worker_code: Path = ROOT
    ):
        self.env = {
            **env,
            "TEMPORAL_QUEUE_PREFIX": prefix,
            "TENANT_SCHEMA_POOL_SIZE": str(pool_size),
        }
        self.pool_size, self.port, self.procs = pool_size, free_port(), []
        self.log_dir, self.prefix, self.worker_code = log_dir, prefix, worker_code

    def start(self) -> "Stack":
        web = [
            *MANAGE[:1],
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ]
        worker = [
            sys.executable,
            str(self.worker_code / "manage.py"),
            "run_temporal_worker",
            "--max-concurrent-activities",
            "8",
        ]
        worker_env = {**self.env, "PYTHONPATH": str(self.worker_code)}
        runs = [("web", web, self.env, ROOT), ("worker", worker, worker_env, self.worker_code)]
        for name, command, env, cwd in runs:
            log = open(self.log_dir / f"{self.prefix}-{name}.log", "wb")  # noqa: SIM115
            self.procs.append(
                subprocess.Popen(  # noqa: S603 - our own commands
                    command,
                    env=env,
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        wait_for_port("127.0.0.1", self.port, timeout=60, proc=self.procs[0])
        return self

    def stop(self) -> None:
        for proc in self.procs:
            stop_process_group(proc)


def signup(port: int) -> tuple[str, datetime]:
    """One signup; returns the tenant id and the time its 202 arrived."""
    key = uuid.uuid4().hex[:12]
    body = {
        "email": f"{key}@example.com",
        "password": PASSWORD,
        "organization_name": f"Org {key}",
        "subdomain": f"b{key}",
    }
    conn = http.client.HTTPConnection("localhost", port, timeout=60)
    conn.request("POST", "/api/v1/signup/", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    answered = datetime.now(UTC)
    payload = json.loads(response.read())
    conn.close()
    if response.status != 202:
        raise SystemExit(f"signup answered {response.status}: {payload}")
    return payload["tenant"]["id"], answered


def wait_active(db: psycopg.Connection, tenant_id: str, timeout: float = 120) -> tuple:
    """(provisioned_at, schema OID) once the tenant is active."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT t.status, t.provisioned_at, n.oid, t.last_error FROM tenants_tenant t "
            "LEFT JOIN pg_namespace n ON n.nspname = t.schema_name WHERE t.id = %s",
            [tenant_id],
        ).fetchone()
        if row[0] == "active":
            return row[1], row[2]
        if row[0] == "failed":
            raise SystemExit(f"tenant {tenant_id} failed: {row[3]}")
        time.sleep(0.002)
    raise SystemExit(f"tenant {tenant_id} not active after {timeout:.0f}s")


def pool_oids(db: psycopg.Connection) -> set[int]:
    rows = db.execute(
        "SELECT n.oid FROM tenants_poolschema p JOIN pg_namespace n ON n.nspname = p.name"
    ).fetchall()
    return {row[0] for row in rows}


def wait_pool_full(db: psycopg.Connection, size: int, timeout: float = 120) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(oids := pool_oids(db)) >= size:
            return oids
        time.sleep(0.01)
    raise SystemExit(f"the schema pool was not refilled to {size} within {timeout:.0f}s")


def measure(
    env: dict, *, signups: int, pool_size: int, log_dir: Path, before: Path | None = None
) -> dict[str, list]:
    """Interleaved signups on a template stack and a pool stack (and one whose worker runs
    the code at ``before``); ms per path, pool hits."""
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)  # noqa: S603
    stacks = {
        "template": Stack(env, prefix=f"bt{uuid.uuid4().hex[:6]}", pool_size=0, log_dir=log_dir),
        "pool": Stack(
            env, prefix=f"bp{uuid.uuid4().hex[:6]}", pool_size=pool_size, log_dir=log_dir
        ),
    }
    if before is not None:
        stacks["before"] = Stack(
            env,
            prefix=f"bb{uuid.uuid4().hex[:6]}",
            pool_size=0,
            log_dir=log_dir,
            worker_code=before,
        )
        # The same pool (one database, one PoolSchema table) claimed by the earlier code.
        stacks["before-pool"] = Stack(
            env,
            prefix=f"bq{uuid.uuid4().hex[:6]}",
            pool_size=pool_size,
            log_dir=log_dir,
            worker_code=before,
        )
    fill_pool(stacks["pool"])
    try:
        for stack in stacks.values():
            stack.start()
        return rotate_signups(stacks, env["DATABASE_URL"], signups=signups, pool_size=pool_size)
    finally:
        for stack in stacks.values():
            stack.stop()


def fill_pool(stack: Stack) -> None:
    """The pool starts full, as a deployment's is once its first refill ran; after that only
    the refills the claims ask for keep it so."""
    fill = "from tenants import pool\npool.prune()\nwhile pool.fill_one():\n    pass"
    subprocess.run(  # noqa: S603
        [*MANAGE, "shell", "-c", fill],
        env=stack.env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def rotate_signups(
    stacks: dict[str, Stack], database_url: str, *, signups: int, pool_size: int
) -> dict[str, list]:
    """``WARM_UP`` + ``signups`` signups per stack, one at a time, rotating over the stacks
    (running); each waits for a full pool first. ms per path (warm-up left out), pool hits."""
    times: dict[str, list] = {path: [] for path in stacks} | {"hits": [], "before-hits": []}
    with psycopg.connect(database_url, autocommit=True) as db:
        for n in range(WARM_UP + signups):
            order = list(stacks)[n % len(stacks) :] + list(stacks)[: n % len(stacks)]
            for path in order:
                before = wait_pool_full(db, pool_size)
                tenant_id, answered = signup(stacks[path].port)
                provisioned_at, oid = wait_active(db, tenant_id)
                if n >= WARM_UP:
                    times[path].append((provisioned_at - answered).total_seconds() * 1000)
                    if path == "pool":
                        times["hits"].append(oid in before)
                    if path == "before-pool":
                        times["before-hits"].append(oid in before)
    return times


def export_before(ref: str, directory: Path) -> Path:
    """The project at git ``ref``, exported (``git archive``) under ``directory``, with this
    tree's bench settings (they graft the wide app on) and its ``tenants`` migrations over
    it: the template snapshot is used only by code whose migration files match it, and the
    older code never reads the tables the newer migrations add."""
    archive = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "archive", ref],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)  # noqa: S603, S607
    shutil.copy(ROOT / "bench" / "settings.py", directory / "bench" / "settings.py")
    for migration in (ROOT / "tenants" / "migrations").glob("0*.py"):
        shutil.copy(migration, directory / "tenants" / "migrations" / migration.name)
    return directory


def main(*, signups: int, pool_size: int, tables: int, before: str | None = None) -> None:
    server = temporal = None
    log_dir = LOCAL_DIR / "bench-endtoend"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
        "BENCH_FAST_HASHER": "1",
        "TEMPORAL_QUEUE_SHARDS": "1",
        "LOG_LEVEL": "WARNING",
    }
    results = {}
    code = tempfile.TemporaryDirectory(prefix="bench-before-")
    before_dir = export_before(before, Path(code.name)) if before else None
    try:
        # Databases of its own (one per set of tenant apps), on the embedded PostgreSQL.
        server = start_postgres(LOCAL_DIR / "pg-bench")
        if not env.get("TEMPORAL_ADDRESS"):
            temporal = TemporalDevServer(log_file=log_dir / "temporal.log").start()
            env["TEMPORAL_ADDRESS"] = temporal.address
        for app in ("workspace", "wide"):
            url = ensure_database(server, f"bench_e2e_{app}", fresh=True)
            run_env = {**env, "DATABASE_URL": url}
            with tempfile.TemporaryDirectory(prefix="bench-wide-") as wide:
                if app == "wide":
                    wide_app.generate(
                        Path(wide), database_url=run_env["DATABASE_URL"], tables=tables
                    )
                    run_env["BENCH_TENANT_APP_DIR"] = wide
                results[app] = measure(
                    run_env,
                    signups=signups,
                    pool_size=pool_size,
                    log_dir=log_dir,
                    before=before_dir,
                )
    finally:
        code.cleanup()
        if temporal is not None:
            temporal.stop()
        if server is not None:
            server.cleanup()
    report(results, signups=signups, pool_size=pool_size, tables=tables, before=before)
    print(
        "load average at the end (1, 5, 15 min): {:.1f} {:.1f} {:.1f} on {} cores".format(
            *os.getloadavg(), os.cpu_count()
        )
    )


def report(results: dict, *, signups: int, pool_size: int, tables: int, before: str | None) -> None:
    labels = {"workspace": "workspace app (3 tables)", "wide": f"+ {tables}-table tenant app"}
    print(
        f"end to end, 202 -> active: {signups} signups per path, interleaved, one at a time; "
        f"pool of {pool_size}, refilled between signups"
    )
    if before:
        print(
            f"paths 'before' and 'before-pool': the template and the pool path run by the "
            f"worker code of {before}"
        )
    print(f"{'tenant apps':<30}{'path':<12}{'median ms':>10}{'p95 ms':>10}")
    for app, times in results.items():
        for path in [p for p in ("before", "template", "before-pool", "pool") if p in times]:
            med, p95 = median_p95(times[path])
            print(f"{labels[app]:<30}{path:<12}{med:>10.1f}{p95:>10.1f}")
    for app, times in results.items():
        (tm, tp), (pm, pp) = median_p95(times["template"]), median_p95(times["pool"])
        hits = sum(times["hits"])
        print(
            f"{labels[app]}: ratio template / pool {tm / pm:.2f} (median), "
            f"{tp / pp:.2f} (p95); pool hits {hits}/{len(times['hits'])}"
        )
        if "before-pool" in times:
            bm, bp = median_p95(times["before-pool"])
            print(
                f"{labels[app]}: ratio before-pool / pool {bm / pm:.2f} (median), "
                f"{bp / pp:.2f} (p95); pool hits {sum(times['before-hits'])}/"
                f"{len(times['before-hits'])}"
            )
        if "before" in times:
            bm, bp = median_p95(times["before"])
            print(
                f"{labels[app]}: ratio before / template {bm / tm:.2f} (median), "
                f"{bp / tp:.2f} (p95)"
            )
    (wide_pool, _), (small_pool, _) = (
        median_p95(results["wide"]["pool"]),
        median_p95(results["workspace"]["pool"]),
    )
    print(f"pool path, {tables}-table app / workspace app: {wide_pool / small_pool:.2f} (median)")
