"""Moving a tenant between databases: how long its writes are held, by the schema's size.

Two embedded PostgreSQL servers (``default`` and ``tenants2``), a tenant whose schema holds
``--mb`` megabytes of rows (the project's own app, ``workspace_task`` filled with
``generate_series``), moved with the move's own steps in this process (hold, copy, verify,
switch: what ``TenantMoveWorkflow`` runs, less the workflow's dispatch, a few milliseconds),
then moved back, ``--rounds`` times. The hold is from the tenant's suspension to its
reactivation: the time its writes are refused.

Baseline, measured in the same run on the same schema: ``pg_dump --format custom`` of the
schema to /dev/null, the least a copy must read. The ratio says what the move costs beyond
reading the data once.

    .venv/bin/python bench/move.py [--mb 100] [--rounds 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.localservices import LOCAL_DIR, ensure_database, start_postgres  # noqa: E402

GOAL_SECONDS_PER_100MB = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the tenant's data")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servers = [start_postgres(LOCAL_DIR / "pg-bench"), start_postgres(LOCAL_DIR / "pg-bench-2")]
    urls = [ensure_database(server, "bench_move", fresh=True) for server in servers]
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=urls[0],
        TENANT_DATABASE_URLS=f"tenants2={urls[1]}",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--no-fleet", verbosity=0)
    try:
        run(args.mb, args.rounds)
    finally:
        for server in servers:
            server.cleanup()


def run(mb: int, rounds: int) -> None:
    from django.db import connections
    from psycopg import sql

    from core.db import libpq_params
    from tenants.databases import on_database
    from tenants.models import Tenant, TenantStatus
    from tenants.schemas.create import create_schema
    from tenants.schemas.snapshot import find_pg_dump
    from tenants.services import moves, tenant_seed_defaults
    from tests.factories import TenantFactory, UserFactory

    tenant = TenantFactory(owner=UserFactory(), status=TenantStatus.ACTIVE)
    with on_database("default"):
        create_schema(tenant.schema_name)
    tenant_seed_defaults(tenant_id=tenant.pk)
    size = _fill(connections["default"], tenant.schema_name, mb, sql)
    print(f"tenant schema {tenant.schema_name}: {size / 1e6:.1f} MB (tables and indexes)")

    holds, copies, verifies, dumps = [], [], [], []
    where = "default"
    for _ in range(rounds):
        there = "tenants2" if where == "default" else "default"
        dumps.append(_dump_seconds(find_pg_dump(), libpq_params(where), tenant.schema_name))
        moves.tenant_move_request(tenant=Tenant.objects.get(pk=tenant.pk), to=there)
        started = time.perf_counter()
        moves.tenant_move_hold(tenant_id=tenant.pk)
        copy_started = time.perf_counter()
        moves.tenant_move_copy(tenant_id=tenant.pk)
        verify_started = time.perf_counter()
        moves.tenant_move_verify(tenant_id=tenant.pk)
        verified = time.perf_counter()
        moves.tenant_move_switch(tenant_id=tenant.pk)
        holds.append(time.perf_counter() - started)
        copies.append(verify_started - copy_started)
        verifies.append(verified - verify_started)
        moves.tenant_move_drop_old(tenant_id=tenant.pk)
        assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE
        where = there

    hold, dump = statistics.median(holds), statistics.median(dumps)
    print(f"rounds: {rounds} (default -> tenants2 -> default ...), medians:")
    print(
        f"  writes held     {hold:6.2f} s  (copy {statistics.median(copies):.2f} s, "
        f"verify {statistics.median(verifies):.2f} s)"
    )
    print(f"  baseline        {dump:6.2f} s  (pg_dump --format custom of the schema)")
    print(f"  ratio           {hold / dump:6.2f}  (hold / baseline)")
    goal = GOAL_SECONDS_PER_100MB * size / 100e6
    verdict = "met" if hold <= goal else "NOT met"
    print(f"  goal            hold <= {goal:.1f} s for {size / 1e6:.0f} MB: {verdict}")


def _fill(connection, schema: str, mb: int, sql) -> int:
    """Rows in ``workspace_task`` until the schema holds about ``mb`` megabytes."""
    table = sql.Identifier(schema, "workspace_task")
    project = sql.Identifier(schema, "workspace_project")
    rows = mb * 1_000_000 // 330  # a row with its index entries takes about that much
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (project_id, title, done, created_at) "
                "SELECT (SELECT min(id) FROM {}), repeat(md5(n::text), 5), n %% 2 = 0, now() "
                "FROM generate_series(1, %s) n"
            ).format(table, project),
            [rows],
        )
        cursor.execute(f"ANALYZE {table.as_string(cursor.connection)}")
        cursor.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND c.relkind = 'r'",
            [schema],
        )
        return int(cursor.fetchone()[0])


def _dump_seconds(pg_dump: str, params: dict, schema: str) -> float:
    from psycopg.conninfo import make_conninfo

    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - fixed arguments
        [pg_dump, "--dbname", make_conninfo(**params), "--schema", schema, "--format", "custom"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
