from django.core.management import call_command
from django.db import connections
from django_tenants.management.commands.migrate_schemas import (
    GET_EXECUTOR_FUNCTION,
    MigrateSchemasCommand,
)
from django_tenants.utils import get_public_schema_name

from tenants import pool
from tenants.databases import tenant_databases
from tenants.schemas.snapshot import sync_template
from tenants.selectors import existing_tenant_schemas


class Command(MigrateSchemasCommand):
    """django-tenants' ``migrate_schemas``, over the tenant schemas that exist, then the
    template schema new tenants are copied from: every schema, here and now, one after the
    other (``manage.py migrate`` leaves the tenant schemas to a fleet run instead).

    A tenant row whose schema is not made yet (pending, or failed before the schema step)
    would otherwise stop the whole run; the provisioning workflow migrates a schema when it
    makes it. Each tenant database's schemas are migrated there. ``--schema`` and
    ``--shared`` behave exactly as upstream (``--schema`` with ``--database``).
    """

    def handle(self, *args, **options):
        if self.upstream_only(options):
            return super().handle(*args, **options)
        if not options.get("tenant"):
            self.migrate_shared(*args, **options)
        super(MigrateSchemasCommand, self).handle(*args, **{**options, "tenant": True})
        for database in tenant_databases():
            schemas = existing_tenant_schemas(database)
            schemas = [s for s in schemas if s != get_public_schema_name()]
            if not schemas:
                continue
            if self.executor == "multiprocessing":
                # Forked children would share the parent's pooled sockets (and fail with
                # "the last operation didn't produce records"): each makes its own pool.
                for alias in tenant_databases():
                    connections[alias].close_pool()
            in_database = {**self.options, "database": database}
            executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, in_database)
            executor.run_migrations(tenants=schemas)
        self.after_migrate(options)
        return None

    @staticmethod
    def upstream_only(options) -> bool:
        return bool(options.get("schema_name")) or (
            bool(options.get("shared")) and not options.get("tenant")
        )

    def migrate_shared(self, *args, **options) -> None:
        super().handle(*args, **{**options, "shared": True, "tenant": False})

    def after_migrate(self, options) -> None:
        # A database cache (production without Redis) needs its table.
        call_command("createcachetable", verbosity=0)
        # Keep the template current, so new tenants are copies, not migrations.
        if sync_template() is None and options.get("verbosity", 1) >= 1:
            self.stdout.write(
                "No template snapshot stored (no pg_dump, or an unsafe dump: see the log): "
                "new tenant schemas will be made by migrations."
            )
        # Pool schemas are not migrated (no tenant uses them yet): those the migrations just
        # made stale are dropped here; the next refill builds current ones.
        pool.prune()
