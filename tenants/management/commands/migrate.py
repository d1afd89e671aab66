from tenants.management.commands.migrate_schemas import Command as MigrateSchemasCommand


class Command(MigrateSchemasCommand):
    """``manage.py migrate`` is ``migrate_schemas`` in a schema-per-tenant project."""
