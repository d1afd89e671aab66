"""Fleet migration vs django-tenants' ``migrate_schemas``, on the same schemas, in one run.

Each figure is a whole command, from its start to its exit, on the embedded PostgreSQL and a
Temporal dev server started here, with ``--workers`` worker processes (``run_temporal_worker``,
one by default):

* standard / multiprocessing - ``manage.py migrate_schemas --tenant --executor=...``, the
  multiprocessing executor with ``--parallel`` processes;
* fleet - ``manage.py migrate_fleet --wait --concurrency <parallel>``: the request, the
  workflow on the worker, and the wait for its end (its previous runs deleted first).

(a) nothing to apply: every schema current. (b) one ``AddField`` migration for every schema
(a workspace migrations package with one more migration, generated here; the schemas are
put back without it between commands; the worker is restarted with it off the clock).
(c) one signup (``account_signup``, the signup request's transaction) during the fleet run
of (b): commit -> tenant active, against the same figure with the worker idle afterwards
(the workers, restarted for (b), make one signup off the clock first, so that neither side
pays their first provisioning's imports).
(d) cost per tenant at ``--small`` and at ``--tenants`` tenants.

    .venv/bin/python bench/fleet.py [--tenants 1000] [--small 100] [--parallel 2] [--workers 1]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.localservices import (  # noqa: E402
    LOCAL_DIR,
    TemporalDevServer,
    ensure_database,
    start_postgres,
    stop_process_group,
)

ADD_FIELD = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workspace", "0001_initial")]
    operations = [
        migrations.AddField("project", "bench_note", models.CharField(max_length=40, null=True)),
    ]
"""


def migrations_package(where: Path) -> str:
    """A copy of the workspace app's migrations plus ``0002_bench_note`` (an AddField)."""
    package = where / "bench_workspace_migrations"
    shutil.copytree(
        ROOT / "tenants" / "workspace" / "migrations",
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (package / "0002_bench_note.py").write_text(ADD_FIELD)
    return package.name


class Bench:
    def __init__(self, env: dict, parallel: int, workers: int = 1):
        self.env, self.parallel, self.workers_wanted = env, parallel, workers
        self.workers: list[subprocess.Popen] = []

    def manage(self, *args: str, env: dict | None = None) -> float:
        started = time.perf_counter()
        subprocess.run(  # noqa: S603
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=env or self.env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started

    def start_worker(self, env: dict) -> None:
        """``--workers`` worker processes (each with its relay), as a deployment runs them."""
        self.stop_worker()
        command = [
            sys.executable,
            str(ROOT / "manage.py"),
            "run_temporal_worker",
            "--max-concurrent-activities",
            str(max(8, 2 * self.parallel)),
        ]
        self.workers = [
            subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)  # noqa: S603
            for _ in range(self.workers_wanted)
        ]
        time.sleep(5)  # off the clock: the workers connect and poll

    def stop_worker(self) -> None:
        for worker in self.workers:
            stop_process_group(worker)
        self.workers = []

    def fleet(self, env: dict) -> float:
        from tenants.models import FleetRun

        FleetRun.objects.all().delete()  # one run per set of migrations: make room for another
        return self.manage("migrate_fleet", "--wait", "--concurrency", str(self.parallel), env=env)


def grow(owner, to: int) -> None:
    """Active tenants with schemas (from the template) until there are ``to``."""
    from tenants.models import Tenant, TenantStatus
    from tenants.schemas.create import create_schema

    have = Tenant.objects.count()
    for n in range(have, to):
        tenant = Tenant.objects.create(
            name=f"T{n}", subdomain=f"bench{n}", owner=owner, status=TenantStatus.ACTIVE
        )
        create_schema(tenant.schema_name)


def without_bench_migration() -> None:
    """Every schema with 0002's column (tenants, the template) back to the workspace app
    without 0002 (the column and its record are added in one transaction)."""
    from django.db import connection
    from psycopg import sql

    drop = "ALTER TABLE {}.workspace_project DROP COLUMN IF EXISTS bench_note"
    forget = "DELETE FROM {}.django_migrations WHERE app = 'workspace' AND name = '0002_bench_note'"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attname = 'bench_note' "
            "AND NOT a.attisdropped AND c.relname = 'workspace_project'"
        )
        names = [row[0] for row in cursor.fetchall()]
        for name in names:
            cursor.execute(sql.SQL(drop).format(sql.Identifier(name)))
            cursor.execute(sql.SQL(forget).format(sql.Identifier(name)))


PASSWORD = "a long passphrase 123"  # noqa: S105 - a bench user's


def signup_to_active() -> float:
    """Commit of a signup -> its tenant active (polled every 5 ms), in seconds."""
    from tenants.models import Tenant, TenantStatus
    from tenants.services import account_signup

    tag = uuid.uuid4().hex[:10]
    _, tenant, _ = account_signup(
        email=f"{tag}@example.com",
        password=PASSWORD,
        organization_name="Signup",
        subdomain=f"s{tag}",
    )
    committed = time.perf_counter()
    done = (TenantStatus.ACTIVE, TenantStatus.FAILED)
    while Tenant.objects.filter(pk=tenant.pk).values_list("status", flat=True).get() not in done:
        time.sleep(0.005)
    return time.perf_counter() - committed


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(bench: "Bench", env: dict, added: dict) -> dict:
    """The figures at the present number of tenants."""
    bench.start_worker(env)
    log("(a) standard")
    figures = {"standard": bench.manage("migrate_schemas", "--tenant", "--executor=standard")}
    log("(a) multiprocessing")
    figures["multiprocessing"] = bench.manage(
        "migrate_schemas", "--tenant", "--executor=multiprocessing"
    )
    log("(a) fleet")
    figures["fleet"] = bench.fleet(env)
    bench.start_worker(added)
    # Off the clock: the new workers' first provisioning imports and caches what later ones
    # reuse (the idle signups of (c) come after it too, so both sides of (c) are warm).
    signup_to_active()
    without_bench_migration()
    log("(b) multiprocessing")
    figures["add_multiprocessing"] = bench.manage(
        "migrate_schemas", "--tenant", "--executor=multiprocessing", env=added
    )
    without_bench_migration()
    during: list[float] = []
    signup = threading.Timer(2.0, lambda: during.append(signup_to_active()))
    signup.start()
    log("(b) fleet, one signup 2 s in")
    figures["add_fleet"] = bench.fleet(added)
    signup.join()
    figures["during"] = during[0]
    log("(c) idle signups")
    figures["idle"] = statistics.median(signup_to_active() for _ in range(5))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="run_temporal_worker processes for the fleet (django-tenants gets --parallel)",
    )
    args = parser.parse_args()
    server = temporal = bench = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    try:
        server = start_postgres(LOCAL_DIR / "pg-bench")
        temporal = TemporalDevServer(log_file=workdir / "temporal.log").start()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": ensure_database(server, "bench_fleet", fresh=True),
            "TEMPORAL_ADDRESS": temporal.address,
            "PYTHONPATH": f"{ROOT}:{workdir}",
            "BENCH_TENANT_PROCESSES": str(args.parallel),
            "TEMPORAL_QUEUE_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
        }
        added = {**env, "BENCH_WORKSPACE_MIGRATIONS": migrations_package(workdir)}
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        from accounts.models import User

        call_command("migrate", "--noinput", "--no-fleet", verbosity=0)
        owner = User.objects.create_user(email="owner@example.com", password=PASSWORD)
        bench = Bench(env, args.parallel, args.workers)
        results = {}
        for scale in (args.small, args.tenants):
            log(f"{scale} tenants")
            grow(owner, scale)
            results[scale] = measure(bench, env, added)
            report(scale, args.parallel, args.workers, results[scale])
        small, large = results[args.small], results[args.tenants]
        ratios = [
            (large[key] / args.tenants) / (small[key] / args.small)
            for key in ("fleet", "add_fleet")
        ]
        print(
            f"\n(d) fleet cost per tenant, {args.tenants} vs {args.small} tenants: nothing to "
            f"apply {ratios[0]:.2f}x, one AddField {ratios[1]:.2f}x (goal <= 1.2x)"
        )
    finally:
        if bench is not None:
            bench.stop_worker()
        if temporal is not None:
            temporal.stop()
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def report(scale: int, parallel: int, workers: int, f: dict) -> None:
    print(f"\n{scale} tenant schemas, parallelism {parallel}, {workers} worker process(es):")
    print(
        f"(a) nothing to apply: standard {f['standard']:.1f} s, multiprocessing "
        f"{f['multiprocessing']:.1f} s, fleet {f['fleet']:.1f} s -> fleet "
        f"{f['standard'] / f['fleet']:.1f}x faster than standard, "
        f"{f['multiprocessing'] / f['fleet']:.1f}x than multiprocessing (goal >= 20x)"
    )
    print(
        f"(b) one AddField: multiprocessing {f['add_multiprocessing']:.1f} s, fleet "
        f"{f['add_fleet']:.1f} s -> {f['add_multiprocessing'] / f['add_fleet']:.2f}x (goal >= 2x)"
    )
    print(
        f"(c) signup commit -> active during (b) {f['during'] * 1000:.0f} ms, idle median "
        f"{f['idle'] * 1000:.0f} ms -> {f['during'] / f['idle']:.2f}x (goal <= 2x)"
    )


if __name__ == "__main__":
    main()
