"""Tenant schema creation: template snapshot vs migrations vs django-tenants' clone_schema.

Creating the schema is the part of provisioning that grows with the app. The provisioning
workflow creates the schema and then always runs its migrate step, so each path is timed
as create + ``tenants.schemas.migrate.migrate_schema`` together, around the two calls only,
on a fresh connection opened off the clock, interleaved so machine noise hits all of them:

* template   - ``create_schema`` with a current snapshot (the default path): the template's
               dump replayed in one transaction; the migrate step finds nothing to apply;
* migrations - the fallback: CREATE SCHEMA + every migration, then the migrate step;
* clone      - django-tenants' ``CloneSchema.clone_schema`` from the same template schema
               (it re-creates its plpgsql helper functions on each call), then the migrate step;
* template + migrate_schemas - the template path with django-tenants' ``migrate_schemas``
               as the migrate step, what ``migrate_schema`` ran before it learnt to skip a
               schema that is already current.

Then it keeps creating from the template (create + migrate) until the database holds
--scale tenant schemas, and compares the first creation with the last ones: does it slow
down as schemas pile up?

    .venv/bin/python bench/provisioning.py [--tenants 50] [--scale 200]

``--end-to-end`` measures instead what a new user waits for, ``202 -> active``, from the
template and from the warm schema pool, with the project's tenant app and with a generated
52-table one (bench/endtoend.py):

    .venv/bin/python bench/provisioning.py --end-to-end [--signups 40] [--pool-size 2]
        [--before GIT_REF]   # also the worker code of an earlier commit, as a baseline
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import median_p95  # noqa: E402
from devstack.localservices import LOCAL_DIR, ensure_database, start_postgres  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50, help="per path (>= 50)")
    parser.add_argument("--scale", type=int, default=200)
    parser.add_argument("--end-to-end", action="store_true", help="202 -> active instead")
    parser.add_argument("--signups", type=int, default=40, help="per path (--end-to-end)")
    parser.add_argument("--pool-size", type=int, default=2, help="(--end-to-end)")
    parser.add_argument("--tables", type=int, default=52, help="of the wide app (--end-to-end)")
    parser.add_argument(
        "--before", metavar="GIT_REF", help="also run the worker code of this commit (--end-to-end)"
    )
    args = parser.parse_args()
    if args.end_to_end:
        from bench import endtoend

        endtoend.main(
            signups=args.signups, pool_size=args.pool_size, tables=args.tables, before=args.before
        )
        return
    server = None
    made: list[str] = []
    try:
        if not os.environ.get("DATABASE_URL"):
            server = start_postgres(LOCAL_DIR / "pg-bench")
            os.environ["DATABASE_URL"] = ensure_database(server, "bench_provisioning", fresh=True)
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django_tenants.clone import CloneSchema

        from tenants.models import SchemaTemplate
        from tenants.schemas.create import BY_MIGRATIONS, FROM_TEMPLATE, create_schema
        from tenants.schemas.migrate import migrate_schema

        call_command("migrate", "--noinput", verbosity=0)  # also takes the template snapshot
        template = SchemaTemplate.objects.get()

        def timed(fn) -> float:
            name = f"t_{uuid.uuid4().hex}"
            made.append(name)
            # Every path starts on a fresh, open connection (the migrations path closes its
            # own when done), made off the clock.
            connection.close()
            connection.ensure_connection()
            started = time.perf_counter()
            fn(name)
            return (time.perf_counter() - started) * 1000

        def from_template(name):
            assert create_schema(name) == FROM_TEMPLATE
            migrate_schema(name)

        def by_migrations(name):  # the snapshot is deleted before the timer starts
            assert create_schema(name) == BY_MIGRATIONS
            migrate_schema(name)

        def clone(name):
            CloneSchema().clone_schema(settings.TENANT_TEMPLATE_SCHEMA, name)
            connection.set_schema_to_public()
            migrate_schema(name)

        def template_full_migrate(name):
            assert create_schema(name) == FROM_TEMPLATE
            call_command("migrate_schemas", schema_name=name, interactive=False, verbosity=0)
            connection.set_schema_to_public()

        # 1. Does creation slow down as schemas pile up? Tenant #1 .. #scale, template path,
        # after one untimed creation (first-call costs: caches, catalog) that is dropped.
        timed(from_template)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{made.pop()}" CASCADE')
        growth = [timed(from_template) for _ in range(args.scale)]

        # 2. The paths side by side, interleaved.
        times = {"template": [], "migrations": [], "clone": [], "full": []}
        for _ in range(args.tenants):
            times["template"].append(timed(from_template))
            SchemaTemplate.objects.all().delete()
            times["migrations"].append(timed(by_migrations))
            template.save()  # the same snapshot back
            times["clone"].append(timed(clone))
            times["full"].append(timed(template_full_migrate))

        print(
            f"schema creation + migrate step, {args.tenants} tenants per path, interleaved "
            f"({len(template.migrations)} migrations in the project)"
        )
        print(f"{'path (create + migrate)':<46}{'median ms':>10}{'p95 ms':>10}")
        labels = {
            "template": "template snapshot (default)",
            "migrations": "migrations (fallback)",
            "clone": "django-tenants clone_schema",
            "full": "template, migrate step = migrate_schemas",
        }
        for key, label in labels.items():
            med, p95 = median_p95(times[key])
            print(f"{label:<46}{med:>10.1f}{p95:>10.1f}")
        t, m, c, f = (median_p95(times[k]) for k in ("template", "migrations", "clone", "full"))
        for label, (med, p95) in [
            ("migrations / template", m),
            ("clone_schema / template", c),
            ("template+migrate_schemas / template", f),
        ]:
            print(f"{'ratio ' + label:<46}{med / t[0]:>10.1f}{p95 / t[1]:>10.1f}")
        head, tail = statistics.median(growth[:5]), statistics.median(growth[-5:])
        last = f"#{args.scale - 4}-{args.scale}"
        print(
            f"template path (create + migrate) as schemas accumulate: "
            f"tenant #1 {growth[0]:.1f} ms, #{args.scale} {growth[-1]:.1f} ms; "
            f"median of #1-5 {head:.1f} ms, of {last} {tail:.1f} ms "
            f"(ratio {tail / head:.2f})"
        )
    finally:
        if made:
            from django.db import connection

            with connection.cursor() as cursor:
                for name in made:
                    cursor.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            connection.close()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
