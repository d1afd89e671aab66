from django.core.management.base import BaseCommand, CommandError

from tenants.management.commands.tenant_reactivate import tenant_or_error
from tenants.models import InvalidTransition
from tenants.services.deletion import tenant_purge_now


class Command(BaseCommand):
    help = (
        "Delete a tenant at once (an erasure request): its schema, data, domains and access, "
        "whether or not its deletion was scheduled. This cannot be undone."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", help="The tenant's id (a UUID).")

    def handle(self, *args, tenant_id, **options):
        try:
            tenant = tenant_purge_now(tenant=tenant_or_error(tenant_id))
        except InvalidTransition as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Tenant {tenant.pk} ({tenant.subdomain}) is being deleted.")
