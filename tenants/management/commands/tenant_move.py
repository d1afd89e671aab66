import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.management.commands.tenant_reactivate import tenant_or_error
from tenants.models import Tenant
from tenants.services.moves import MoveRefused, tenant_move_request


class Command(BaseCommand):
    help = (
        "Move a tenant's schema to another tenant database (TENANT_DATABASES): its writes "
        "are held while the schema is copied and verified, then it is served from there; "
        "the old schema is dropped after TENANT_MOVE_DROP_AFTER. --wait follows the move."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant_id", help="The tenant's id (a UUID).")
        parser.add_argument(
            "--to",
            required=True,
            help=f"The database alias: one of {', '.join(settings.TENANT_DATABASES)}.",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Print the move's steps as they happen, until it is switched or has failed.",
        )
        parser.add_argument(
            "--timeout", type=float, default=600, help="Seconds --wait waits at most."
        )

    def handle(self, *args, tenant_id, to, wait, timeout, **options):
        tenant = tenant_or_error(tenant_id)
        source = tenant.database
        try:
            tenant = tenant_move_request(tenant=tenant, to=to)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.message_dict["to"])) from exc
        except MoveRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Tenant {tenant.pk} ({tenant.subdomain}): move {tenant.moves} from {source!r} "
            f"to {to!r} requested."
        )
        if wait:
            self.follow(tenant.pk, to, timeout)

    def follow(self, tenant_id, to: str, timeout: float) -> None:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tenant = Tenant.objects.get(pk=tenant_id)
            for step in tenant.steps_done:
                if step not in seen:
                    seen.append(step)
                    self.stdout.write(f"  {step} done")
            if tenant.database == to and not tenant.move_to:
                when = (
                    f"at {tenant.move_drop_at:%Y-%m-%d %H:%M:%S} UTC"
                    if tenant.move_drop_at
                    else "now"
                )
                self.stdout.write(
                    f"Tenant {tenant_id} is served from {to!r} ({tenant.status}); its old "
                    f"schema is dropped {when}."
                )
                return
            if not tenant.move_to:
                raise CommandError(
                    f"The move failed; tenant {tenant_id} stays in "
                    f"{tenant.database!r}. {tenant.last_error}"
                )
            time.sleep(0.5)
        raise CommandError(f"The move did not finish within {timeout:g} s (it goes on).")
