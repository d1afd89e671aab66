import logging
import signal
from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError

from orchestration.management.commands._temporal import TemporalCommand
from orchestration.relay import OutboxRelay
from orchestration.relay.claim import BATCH_SIZE
from orchestration.relay.start import START_CONCURRENCY

logger = logging.getLogger("orchestration.relay")


class Command(TemporalCommand):
    help = (
        "Start the workflows recorded in the outbox, exactly once each, until SIGTERM/SIGINT. "
        "run_temporal_worker runs the same relay unless given --no-relay; this command is for "
        "running it on its own. Several relays may run at once."
    )
    trace_service = "tenantflow-relay"

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help="Rows leased per pass."
        )
        parser.add_argument(
            "--start-concurrency",
            type=int,
            default=START_CONCURRENCY,
            help="Rows of a pass started at once.",
        )
        parser.add_argument(
            "--runs-per-tenant",
            type=int,
            default=None,
            help="Open runs this relay keeps per tenant; 0: no cap "
            "(default OUTBOX_RUNS_PER_TENANT).",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=None,
            help="Seconds between polls when no NOTIFY arrives (default OUTBOX_POLL_INTERVAL).",
        )

    def handle(
        self, *args, batch_size, start_concurrency, runs_per_tenant, poll_interval, **options
    ):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if start_concurrency < 1:
            raise CommandError("--start-concurrency must be at least 1.")
        if runs_per_tenant is not None and runs_per_tenant < 0:
            raise CommandError("--runs-per-tenant must be 0 (no cap) or more.")
        if poll_interval is not None and poll_interval <= 0:
            raise CommandError("--poll-interval must be positive.")
        relay = OutboxRelay(
            batch_size=batch_size,
            start_concurrency=start_concurrency,
            runs_per_tenant=runs_per_tenant,
            poll_interval=poll_interval or settings.OUTBOX_POLL_INTERVAL,
            retention=timedelta(days=settings.OUTBOX_RETENTION_DAYS),
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: relay.stop())
        logger.info("outbox relay running (Temporal %s)", settings.TEMPORAL_ADDRESS)
        relay.run()
        logger.info("outbox relay stopped")
