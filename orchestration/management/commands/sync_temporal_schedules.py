import asyncio

from django.core.management.base import CommandError

from orchestration import client as temporal_client
from orchestration.management.commands._temporal import TemporalCommand
from orchestration.schedules import sync_schedules


class Command(TemporalCommand):
    help = (
        "Create or update the project's Temporal Schedules (token cleanup). Idempotent; "
        "schedules the project does not own are left untouched."
    )

    def handle(self, *args, **options):
        async def run() -> dict[str, str]:
            return await sync_schedules(await temporal_client.connect())

        try:
            outcome = asyncio.run(run())
        except Exception as exc:
            raise CommandError(f"Could not sync schedules: {type(exc).__name__}: {exc}") from exc
        for schedule_id, what in outcome.items():
            self.stdout.write(f"{schedule_id}: {what}")
