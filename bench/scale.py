"""One database grown to 10,000 tenants: what each further tenant costs, measured in one run.

One embedded PostgreSQL database, one Temporal dev server. The database grows through
``--levels`` (100, 1,000, 5,000, 10,000 tenants of the project's tenant app); at each level:

* provisioning: ``--signups`` signups per path through the real path (``POST /api/v1/signup/``
  on gunicorn, the outbox relay, ``run_temporal_worker``), 202 -> active, rotating between a
  stack that builds from the template and one that takes a pool schema (bench/endtoend.py);
* fleet migration (``migrate_fleet --wait``) with nothing to apply and with one ``AddField``,
  against django-tenants' ``migrate_schemas --executor=multiprocessing`` on the same schemas
  (bench/fleet.py), each with ``--parallel`` processes. A ``migrate_schemas`` still running
  after ``--cap`` seconds is stopped, and its time extrapolated from the schemas it began
  per second (printed "extrapolated");
* the status API (``GET /api/v1/tenants/<id>/``, as a tenant's owner) and the admin's
  tenant list (``/admin/tenants/tenant/``, as a superuser), p95 of sequential requests;
* relay throughput: ``--relay-rows`` outbox rows committed at once (each its own fairness
  key, on a task queue no worker polls), rows started per second until the last;
* the catalog: ``pg_class`` rows, the database's size, and for ``pg_class``,
  ``pg_attribute`` and ``pg_depend`` the dead tuples and autovacuum runs; the RSS of the
  web (gunicorn, all processes) and of a worker process.

Filling between levels is not measured: schemas are the stored template's script replayed
on ``--fill-connections`` connections, many per transaction, then users, tenants (active),
primary domains and owner memberships in bulk, as a signup and its provisioning leave them.
Then one level of ``--wide`` tenants with a 52-table tenant app (bench/wide_app.py), in a
database of its own. Ratios are against the first level of the same run.

    nice -n 10 .venv/bin/python bench/scale.py [--levels 100,1000,5000,10000] [--signups 10]
        [--cap 240] [--wide 1000] [--workers 2] [--parallel 2]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import wide_app  # noqa: E402
from bench.endtoend import MANAGE, Stack, fill_pool, rotate_signups  # noqa: E402
from bench.fleet import Bench, log, migrations_package, without_bench_migration  # noqa: E402
from bench.stats import median_p95  # noqa: E402
from devstack import localservices as services  # noqa: E402

PASSWORD = "correct horse battery staple"  # noqa: S105 - the bench users'
CATALOG = ("pg_class", "pg_attribute", "pg_depend")


# --- filling -------------------------------------------------------------------------------


def fill(database_url: str, script: str, placeholder: str, to: int, *, connections: int) -> int:
    """Active tenants until there are ``to``, each with its schema (the template's script),
    owner, primary domain and owner membership. Returns how many were added."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from tenants.models import Domain, Membership, Tenant, TenantStatus
    from tenants.roles import Role

    start = Tenant.objects.count()
    if start >= to:
        return 0
    now, hashed = timezone.now(), make_password(PASSWORD)
    ids = [uuid.uuid4() for _ in range(start, to)]
    tenants = [
        Tenant(
            id=tenant_id,
            name=f"Scale {n}",
            subdomain=f"scale{n}",
            status=TenantStatus.ACTIVE,
            provisioned_at=now,
            workflow_id=f"tenant-provision-{tenant_id}",
        )
        for n, tenant_id in zip(range(start, to), ids, strict=True)
    ]
    for tenant in tenants:
        tenant.schema_name = f"t_{tenant.id.hex}"
    build_schemas(database_url, script, placeholder, [t.schema_name for t in tenants], connections)
    users = [
        User(email=f"{t.subdomain}@example.com", password=hashed, email_verified_at=now)
        for t in tenants
    ]
    User.objects.bulk_create(users, batch_size=2000)
    for tenant, user in zip(tenants, users, strict=True):
        tenant.owner = user
    Tenant.objects.bulk_create(tenants, batch_size=2000)
    Domain.objects.bulk_create(
        [
            Domain(domain=f"{t.subdomain}.{settings.TENANT_BASE_DOMAIN}", tenant=t, is_primary=True)
            for t in tenants
        ],
        batch_size=2000,
    )
    Membership.objects.bulk_create(
        [Membership(user=t.owner, tenant=t, role=Role.OWNER) for t in tenants], batch_size=2000
    )
    return len(tenants)


def build_schemas(url: str, script: str, placeholder: str, names: list[str], connections: int):
    """Each schema the template's script replayed, on ``connections`` connections at once;
    as many schemas a transaction as hold about 60 tables (their locks are held to the end)."""
    per = max(1, 60 // max(1, script.count("CREATE TABLE")))
    batches = [names[i : i + per] for i in range(0, len(names), per)]

    def build(batch: list[str]) -> None:
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            for name in batch:
                conn.execute(f'CREATE SCHEMA "{name}"')
                conn.execute(script.replace(placeholder, name))

    with ThreadPoolExecutor(connections) as threads:
        list(threads.map(build, batches))


# --- measuring -----------------------------------------------------------------------------


def capped(env: dict, cap: float, schemas: int, args: list[str], done) -> tuple[float, bool]:
    """``manage.py *args``, stopped after ``cap`` seconds. Returns its time and False, or,
    when stopped, the time extrapolated from the schemas done per second (``done(output)``)
    and True, or the time it ran and None when it did not finish one schema."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(  # noqa: S603 - our own manage.py
            [*MANAGE, *args], env=env, cwd=ROOT, stdout=out, start_new_session=True
        )
        try:
            proc.wait(cap)
            if proc.returncode:
                raise SystemExit(f"{' '.join(args)} exited with {proc.returncode}")
            return time.perf_counter() - started, False
        except subprocess.TimeoutExpired:
            elapsed = time.perf_counter() - started
            out.seek(0)
            finished = done(out.read())
            services.stop_process_group(proc)
            if not finished:  # nothing to extrapolate from: at least the cap, said so
                return elapsed, None
            return schemas * elapsed / finished, True


def begun(output: bytes) -> int:
    """Schemas django-tenants' ``migrate_schemas`` began, from its output."""
    return len(re.findall(rb"=== Starting migration", output))


def fleet_migrated(_output: bytes) -> int:
    """Schemas the latest fleet run migrated (read from its row)."""
    from tenants.models import FleetRun

    latest = FleetRun.objects.order_by("-created_at").values_list("migrated", flat=True).first()
    return latest or 0


def p95_of_gets(port: int, path: str, headers: dict, count: int) -> float:
    """p95 of ``count`` sequential GETs (after two off the clock), in ms; every one a 200."""
    import http.client

    times = []
    for n in range(count + 2):
        conn = http.client.HTTPConnection("localhost", port, timeout=60)
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        conn.close()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}")
        if n >= 2:
            times.append(elapsed)
    return median_p95(times)[1]


def owner_token() -> tuple[str, str]:
    """(a tenant id, a fresh API token of its owner) for a tenant made by ``fill``."""
    from datetime import timedelta

    from accounts.models import TokenPurpose
    from accounts.services import token_issue
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(subdomain__startswith="scale").order_by("?").first()
    _, raw = token_issue(user=tenant.owner, purpose=TokenPurpose.API, ttl=timedelta(hours=2))
    return str(tenant.pk), raw


def admin_cookie() -> str:
    """A session cookie of a superuser, made directly in the session store."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User

    email = "scale-admin@example.com"
    user = User.objects.filter(email=email).first() or User.objects.create_superuser(
        email=email, password=PASSWORD
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def relay_rate(rows: int, timeout: float = 300) -> float:
    """Outbox rows started per second by the running relay: ``rows`` committed at once."""
    from django.db import transaction

    from orchestration.models import OutboxEntry, OutboxStatus

    tag = uuid.uuid4().hex[:8]
    entries = [
        OutboxEntry(
            workflow_type="BenchScaleIdle",
            workflow_id=f"bench-scale-{tag}-{n}",
            task_queue=f"bench-scale-idle-{tag}",
            fairness_key=f"bench-{tag}-{n}",
        )
        for n in range(rows)
    ]
    with transaction.atomic():
        OutboxEntry.objects.bulk_create(entries)
    committed = time.perf_counter()
    mine = OutboxEntry.objects.filter(workflow_id__startswith=f"bench-scale-{tag}-")
    while mine.exclude(status=OutboxStatus.STARTED).exists():
        if time.perf_counter() - committed > timeout:
            raise SystemExit(f"the relay did not start {rows} rows within {timeout:.0f}s")
        time.sleep(0.01)
    return rows / (time.perf_counter() - committed)


def rss_mb(proc: subprocess.Popen) -> float:
    """RSS of ``proc``'s process group (gunicorn: master and workers), in MB."""
    out = subprocess.run(  # noqa: S603
        ["ps", "-o", "rss=", "-g", str(proc.pid)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sum(int(v) for v in out.split()) / 1024


def catalog() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), pg_database_size(current_database()) FROM pg_class")
        rows, size = cursor.fetchone()
        cursor.execute(
            "SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, last_autovacuum "
            "FROM pg_stat_sys_tables WHERE schemaname = 'pg_catalog' AND relname = ANY(%s)",
            [list(CATALOG)],
        )
        tables = {row[0]: row[1:] for row in cursor.fetchall()}
    return {"pg_class": rows, "size_mb": size / 2**20, "tables": tables}


def measure(env: dict, args, level: int, added: dict | None) -> dict:
    """Every figure at the present number of tenants (``level``)."""
    from django.db import connection

    from tenants.models import SchemaTemplate, Tenant

    template = SchemaTemplate.objects.get()  # the fleet's AddField re-takes it: put back after
    stamp = uuid.uuid4().hex[:6]
    log_dir = env["BENCH_SCALE_LOGS"]
    stacks = {
        "template": Stack(env, prefix=f"st{stamp}", pool_size=0, log_dir=Path(log_dir)),
        "pool": Stack(env, prefix=f"sp{stamp}", pool_size=2, log_dir=Path(log_dir)),
    }
    figures: dict = {}
    fill_pool(stacks["pool"])
    try:
        for stack in stacks.values():
            stack.start()
        log(f"{level}: signups")
        times = rotate_signups(
            stacks, env["DATABASE_URL"], signups=args.signups, pool_size=stacks["pool"].pool_size
        )
        figures["template"], figures["pool"] = (
            median_p95(times["template"]),
            median_p95(times["pool"]),
        )
        figures["hits"] = f"{sum(times['hits'])}/{len(times['hits'])}"
        stacks["template"].stop()  # one relay from here on
        port = stacks["pool"].port
        tenant_id, token = owner_token()
        log(f"{level}: status API, admin, relay")
        figures["status"] = p95_of_gets(
            port, f"/api/v1/tenants/{tenant_id}/", {"Authorization": f"Bearer {token}"}, 100
        )
        figures["admin"] = p95_of_gets(
            port, "/admin/tenants/tenant/", {"Cookie": admin_cookie()}, 20
        )
        figures["relay"] = relay_rate(args.relay_rows)
        web, worker = stacks["pool"].procs
        figures["web_rss"], figures["worker_rss"] = rss_mb(web), rss_mb(worker)
    finally:
        for stack in stacks.values():
            stack.stop()
    connection.close()
    figures.update(catalog())
    figures["tenants"] = Tenant.objects.count()
    report_level(level, figures)
    if added is not None:
        figures.update(fleet(env, added, args))
        template.save()  # the snapshot without the AddField, for the next level's provisioning
        report_fleet(figures)
    return figures


def fleet(env: dict, added: dict, args) -> dict:
    """Fleet migration against django-tenants' multiprocessing executor, nothing to apply and
    one AddField, on every tenant schema; each capped at ``--cap`` seconds."""
    from tenants.models import FleetRun, Tenant

    schemas = Tenant.objects.count()
    mp = ["migrate_schemas", "--tenant", "--executor=multiprocessing"]
    fleet = ["migrate_fleet", "--wait", "--concurrency", str(args.parallel)]
    bench = Bench(env, args.parallel, args.workers)
    figures = {}
    try:
        bench.start_worker(env)
        log(f"{schemas}: fleet, nothing to apply")
        figures["fleet"] = bench.fleet(env)
        log(f"{schemas}: multiprocessing, nothing to apply")
        figures["mp"] = capped(env, args.cap, schemas, mp, begun)
        bench.start_worker(added)
        without_bench_migration()
        log(f"{schemas}: multiprocessing, one AddField")
        figures["add_mp"] = capped(added, args.cap, schemas, mp, begun)
        without_bench_migration()
        log(f"{schemas}: fleet, one AddField")
        FleetRun.objects.all().delete()
        figures["add_fleet"] = capped(added, args.cap, schemas, fleet, fleet_migrated)
        if figures["add_fleet"][1]:
            bench.manage("migrate_fleet", "--cancel", env=added)
    finally:
        bench.stop_worker()
    without_bench_migration()
    return figures


# --- the run -------------------------------------------------------------------------------


def run_database(server, name: str, env: dict, args, levels: list[int], added) -> dict:
    """A fresh database ``name`` grown through ``levels``; the figures at each."""
    url = services.ensure_database(server, name, fresh=True)
    env = {**env, "DATABASE_URL": url}
    os.environ.update(env)
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)  # noqa: S603
    from django.db import connections

    default = connections["default"]  # this process follows to the new database
    default.close()
    default.close_pool()
    default.settings_dict.update(NAME=name)
    from tenants.models import SchemaTemplate

    template = SchemaTemplate.objects.get()
    results = {}
    for level in levels:
        started = time.perf_counter()
        added_now = fill(
            url, template.script, template.PLACEHOLDER, level, connections=args.fill_connections
        )
        log(f"{level}: filled {added_now} tenants in {time.perf_counter() - started:.0f} s")
        results[level] = measure(env, args, level, added and added(env))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="100,1000,5000,10000", help='"": the wide app only')
    parser.add_argument("--pg-dir", default="pg-bench", help="the PostgreSQL data dir in .local")
    parser.add_argument("--signups", type=int, default=10, help="per path and level")
    parser.add_argument("--parallel", type=int, default=2, help="fleet and django-tenants")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the fleet")
    parser.add_argument("--cap", type=float, default=240, help="seconds per migrate_schemas")
    parser.add_argument("--relay-rows", type=int, default=1000)
    parser.add_argument("--fill-connections", type=int, default=3)
    parser.add_argument("--wide", type=int, default=1000, help="tenants with the wide app; 0: none")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",") if v]
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    log_dir = services.LOCAL_DIR / "bench-scale"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = temporal = None
    try:
        server = services.start_postgres(services.LOCAL_DIR / args.pg_dir)
        temporal = services.TemporalDevServer(log_file=log_dir / "temporal.log").start()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONPATH": f"{ROOT}:{workdir}",
            "BENCH_FAST_HASHER": "1",
            "BENCH_TENANT_PROCESSES": str(args.parallel),
            "BENCH_SCALE_LOGS": str(log_dir),
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_QUEUE_SHARDS": "1",
            "TEMPORAL_QUEUE_PREFIX": f"bs{uuid.uuid4().hex[:6]}",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": services.ensure_database(server, "bench_scale", fresh=True),
        }
        os.environ.update(env)
        import django

        django.setup()
        package = migrations_package(workdir)
        if levels:
            results = run_database(
                server,
                "bench_scale",
                env,
                args,
                levels,
                lambda e: {**e, "BENCH_WORKSPACE_MIGRATIONS": package},
            )
            report_ratios(levels, results)
        if args.wide:
            wide_dir = workdir / "wide"
            url = services.ensure_database(server, "bench_scale_wide", fresh=True)
            wide_app.generate(wide_dir, database_url=url)
            wide_env = {**env, "BENCH_TENANT_APP_DIR": str(wide_dir)}
            log(f"{args.wide} tenants with the 52-table app")
            print("\nthe 52-table tenant app (bench/wide_app.py), no fleet figures:")
            run_database(server, "bench_scale_wide", wide_env, args, [args.wide], None)
    finally:
        if temporal is not None:
            temporal.stop()
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        "load average at the end (1, 5, 15 min): {:.1f} {:.1f} {:.1f} on {} cores".format(
            *os.getloadavg(), os.cpu_count()
        )
    )


# --- the report ----------------------------------------------------------------------------


def seconds(value: tuple[float, bool | None]) -> str:
    """A capped command's time: measured, extrapolated, or (None) over the cap with not one
    schema done, so only a lower bound (ratios against it are bounds too)."""
    time_, extrapolated = value
    if extrapolated is None:
        return f"> {time_:.1f} s (stopped, not one schema done)"
    return f"{time_:.1f} s" + (" (extrapolated)" if extrapolated else "")


def report_level(level: int, f: dict) -> None:
    print(f"\n{level} tenants in one database ({f['tenants']} with the signups):", flush=True)
    print(
        f"  provisioning 202 -> active, ms (p50 / p95): template {f['template'][0]:.0f} / "
        f"{f['template'][1]:.0f}, pool {f['pool'][0]:.0f} / {f['pool'][1]:.0f} "
        f"(pool hits {f['hits']})"
    )
    print(
        f"  status API p95 {f['status']:.1f} ms; admin tenant list p95 {f['admin']:.1f} ms; "
        f"relay {f['relay']:.0f} rows/s"
    )
    print(
        f"  pg_class rows {f['pg_class']}, database {f['size_mb']:.0f} MB; RSS web "
        f"{f['web_rss']:.0f} MB, worker {f['worker_rss']:.0f} MB"
    )
    for name, (live, dead, runs, last) in sorted(f["tables"].items()):
        when = last.strftime("%H:%M:%S") if last else "never"
        print(f"  {name}: {live} live, {dead} dead tuples, autovacuum {runs}x (last {when})")


def report_fleet(f: dict) -> None:
    print(
        f"  fleet, nothing to apply: {f['fleet']:.1f} s; django-tenants multiprocessing "
        f"{seconds(f['mp'])} -> {f['mp'][0] / f['fleet']:.1f}x"
    )
    print(
        f"  fleet, one AddField: {seconds(f['add_fleet'])}; django-tenants multiprocessing "
        f"{seconds(f['add_mp'])} -> {f['add_mp'][0] / f['add_fleet'][0]:.1f}x",
        flush=True,
    )


def report_ratios(levels: list[int], results: dict) -> None:
    base, top = levels[0], levels[-1]
    first, last = results[base], results[top]
    print(f"\nratios, {top} tenants / {base} tenants (same run):")
    keys = [
        ("provisioning p50, template", lambda f: f["template"][0]),
        ("provisioning p50, pool", lambda f: f["pool"][0]),
        ("fleet, nothing to apply", lambda f: f["fleet"]),
        ("fleet, one AddField", lambda f: f["add_fleet"][0]),
        ("status API p95", lambda f: f["status"]),
        ("admin tenant list p95", lambda f: f["admin"]),
        ("relay rows/s", lambda f: f["relay"]),
        ("pg_class rows", lambda f: f["pg_class"]),
        ("database size", lambda f: f["size_mb"]),
        ("web RSS", lambda f: f["web_rss"]),
        ("worker RSS", lambda f: f["worker_rss"]),
    ]
    for label, pick in keys:
        row = "  ".join(f"{level}: {pick(results[level]) / pick(first):.2f}x" for level in levels)
        print(f"  {label:<28}{row}")
    per_tenant = (last["fleet"] / top) / (first["fleet"] / base)
    print(f"  {'fleet per tenant (no-op)':<28}{top}: {per_tenant:.2f}x")
    print(f"\ngoals at {top} tenants:")
    pool, template = last["pool"][0] / first["pool"][0], last["template"][0] / first["template"][0]
    print(
        f"  provisioning p50 <= 1.5x its value at {base}: pool {pool:.2f}x, template "
        f"{template:.2f}x -> {'met' if max(pool, template) <= 1.5 else 'NOT met'}"
    )
    print(
        f"  fleet with nothing to apply <= 10 s: {last['fleet']:.1f} s -> "
        f"{'met' if last['fleet'] <= 10 else 'NOT met'}"
    )
    speedup = last["add_mp"][0] / last["add_fleet"][0]
    extrapolated = [name for name in ("add_mp", "add_fleet") if last[name][1]]
    bound = "at most " if last["add_fleet"][1] is None else ""  # the fleet's time is a floor
    print(
        f"  one AddField >= 3x django-tenants multiprocessing: {bound}{speedup:.1f}x"
        f"{' (extrapolated: ' + ', '.join(extrapolated) + ')' if extrapolated else ''} -> "
        f"{'met' if speedup >= 3 and not bound else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
