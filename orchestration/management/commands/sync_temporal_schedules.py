import asyncio

from django.core.management.base import CommandError

from core.progress import progress
from orchestration import client as temporal_client
from orchestration.management.commands._temporal import TemporalCommand
from orchestration.schedules import project_schedules, sync_schedules


class Command(TemporalCommand):
    help = (
        "Create or update the project's Temporal Schedules (token cleanup). Idempotent; "
        "schedules the project does not own are left untouched. Shows a progress bar on a "
        "terminal, one line per schedule otherwise."
    )

    def handle(self, *args, **options):
        schedules = project_schedules()

        async def run(steps) -> dict[str, str]:
            client = await temporal_client.connect()
            return await sync_schedules(client, schedules, on_step=steps.advance)

        # Each schedule is a round trip or two to Temporal, which may be far away.
        with progress(self.stdout, total=len(schedules), description="schedules") as steps:
            try:
                asyncio.run(run(steps))
            except Exception as exc:
                raise CommandError(
                    f"Could not sync schedules: {type(exc).__name__}: {exc}"
                ) from exc
