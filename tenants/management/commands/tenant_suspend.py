from django.core.management.base import BaseCommand, CommandError

from tenants.management.commands.tenant_reactivate import tenant_or_error
from tenants.models import InvalidTransition, SuspensionReason
from tenants.services import tenant_suspend


class Command(BaseCommand):
    help = (
        "Suspend an active tenant: its hosts and API answer 403, its tasks wait, its data "
        "stays. `tenant_reactivate` ends it."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", help="The tenant's id (a UUID).")
        parser.add_argument(
            "--reason",
            required=True,
            help=f"Why: one of {', '.join(SuspensionReason.values)}.",
        )

    def handle(self, *args, tenant_id, reason, **options):
        if reason not in SuspensionReason.values:
            raise CommandError(
                f"Unknown reason {reason!r}: use one of {', '.join(SuspensionReason.values)}."
            )
        tenant = tenant_or_error(tenant_id)
        try:
            tenant = tenant_suspend(tenant=tenant, reason=reason)
        except InvalidTransition as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Tenant {tenant.pk} ({tenant.subdomain}) is suspended ({reason}).")
