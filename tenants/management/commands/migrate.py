from django.db import DEFAULT_DB_ALIAS

from tenants.fleet import fleet_run_request
from tenants.management.commands.migrate_schemas import Command as MigrateSchemasCommand
from tenants.models import LIVE, Tenant


class Command(MigrateSchemasCommand):
    """``manage.py migrate`` in a schema-per-tenant project: the shared schema and the
    template now, then every tenant schema by a fleet run on the workers (requested through
    the outbox: it starts once this commits, even if Temporal is down now), unless
    ``--no-fleet``. One fleet run per set of migrations: running ``migrate`` again for the
    same code requests nothing more. ``manage.py migrate_fleet`` watches and drives it.

    ``--schema``, ``--shared`` and ``--tenant`` behave as ``migrate_schemas``. With
    ``--database`` another tenant database, nothing but its migration table is made: its
    public schema holds no shared tables.
    """

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--no-fleet",
            action="store_true",
            help="Migrate the shared schema and the template only; request no fleet run.",
        )

    def handle(self, *args, **options):
        if options["database"] != DEFAULT_DB_ALIAS:
            # Another tenant database holds tenant schemas only: the fleet migrates them.
            return super().handle(*args, **{**options, "shared": True, "tenant": False})
        if self.upstream_only(options) or options.get("tenant"):
            return super().handle(*args, **options)
        self.migrate_shared(*args, **options)
        self.after_migrate(options)
        if options["no_fleet"] or options.get("plan") or options.get("check_unapplied"):
            return None
        if not Tenant.objects.filter(status__in=LIVE).exists():
            return None  # no tenant schema to migrate
        run, created = fleet_run_request()
        if options.get("verbosity", 1) >= 1:
            said = "requested" if created else f"already {run.status}"
            self.stdout.write(
                f"Fleet run {run.pk} {said}: the workers migrate every tenant schema that is "
                "behind (manage.py migrate_fleet --status shows progress)."
            )
        return None
