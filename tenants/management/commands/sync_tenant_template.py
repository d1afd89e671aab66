from django.core.management.base import BaseCommand, CommandError

from core.progress import progress
from tenants.schemas.snapshot import SYNC_STEPS, sync_template


class Command(BaseCommand):
    help = (
        "Migrate the template schema (TENANT_TEMPLATE_SCHEMA) and store the snapshot that new "
        "tenant schemas are copied from. `migrate` runs this after migrating; run it by hand "
        "after restoring a database. Shows a progress bar on a terminal, one line per step "
        "otherwise."
    )

    def handle(self, *args, **options):
        # Migrating a template behind many migrations and dumping it take a while.
        with progress(self.stdout, total=len(SYNC_STEPS), description="template") as steps:
            template = sync_template(on_step=steps.advance)
        if template is None:
            raise CommandError(
                "No snapshot stored (no pg_dump found — set PG_DUMP_PATH — or the dump was not "
                "safe to replay; the log says which): the template schema is migrated, but new "
                "tenant schemas will be made by running migrations."
            )
        self.stdout.write(
            f"Template {template.name} stored at {len(template.migrations)} migrations "
            f"({len(template.script):,} bytes of SQL)."
        )
