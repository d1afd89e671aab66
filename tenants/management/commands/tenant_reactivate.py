import uuid

from django.core.management.base import BaseCommand, CommandError

from tenants.models import InvalidTransition, Tenant
from tenants.services import tenant_reactivate


def tenant_or_error(tenant_id: str) -> Tenant:
    """The tenant with this id, or a ``CommandError`` that names the id."""
    try:
        return Tenant.objects.get(pk=uuid.UUID(tenant_id))
    except (ValueError, Tenant.DoesNotExist):
        raise CommandError(f"No tenant has the id {tenant_id!r}.") from None


class Command(BaseCommand):
    help = "Reactivate a suspended tenant: served again, its held tasks run."

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", help="The tenant's id (a UUID).")

    def handle(self, *args, tenant_id, **options):
        try:
            tenant = tenant_reactivate(tenant=tenant_or_error(tenant_id))
        except InvalidTransition as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Tenant {tenant.pk} ({tenant.subdomain}) is active again.")
