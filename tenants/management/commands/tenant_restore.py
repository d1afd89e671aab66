from django.core.management.base import BaseCommand, CommandError

from tenants.management.commands.tenant_reactivate import tenant_or_error
from tenants.models import InvalidTransition
from tenants.services.deletion import GracePeriodOver, tenant_restore


class Command(BaseCommand):
    help = (
        "Restore a tenant scheduled for deletion, before its purge: back to what it was "
        "(active, or suspended for the same reason), every row intact."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", help="The tenant's id (a UUID).")

    def handle(self, *args, tenant_id, **options):
        try:
            tenant = tenant_restore(tenant=tenant_or_error(tenant_id))
        except (InvalidTransition, GracePeriodOver) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Tenant {tenant.pk} ({tenant.subdomain}) is {tenant.status} again.")
