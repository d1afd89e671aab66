"""Commit -> workflow started, through the outbox, against a direct start in the same run.

Each of N starts is the product path: ``tenant_request_provisioning`` commits a tenant
change, an outbox row and a NOTIFY in one transaction; a relay (LISTEN, 2 s safety-net poll)
starts the workflow. Latency = the run's start time on the Temporal server - the wall clock
right after commit. Baseline: ``client.start_workflow`` called directly, latency = server
start time - the wall clock just before the call (what Temporal costs without the outbox).
Server and client share this machine's clock. No worker runs: the runs stay open and are
discarded with the in-memory dev server.

    .venv/bin/python bench/outbox_latency.py [--starts 200]
"""

import argparse
import asyncio
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import median_p95  # noqa: E402
from devstack.localservices import (  # noqa: E402
    LOCAL_DIR,
    TemporalDevServer,
    ensure_database,
    start_postgres,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=200)
    args = parser.parse_args()
    server = temporal = relay = thread = None
    try:
        if not os.environ.get("DATABASE_URL"):
            server = start_postgres(LOCAL_DIR / "pg-bench")
            os.environ["DATABASE_URL"] = ensure_database(server, "bench_outbox", fresh=True)
        if not os.environ.get("TEMPORAL_ADDRESS"):
            temporal = TemporalDevServer().start()
            os.environ["TEMPORAL_ADDRESS"] = temporal.address
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from temporalio.client import Client

        from accounts.models import User
        from orchestration.models import OutboxEntry, OutboxStatus
        from orchestration.relay import OutboxRelay
        from tenants.services import tenant_create, tenant_request_provisioning

        call_command("migrate", "--noinput", verbosity=0)
        address = os.environ["TEMPORAL_ADDRESS"]
        relay = OutboxRelay(connect=lambda: Client.connect(address), poll_interval=2.0)
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        owner = User.objects.create_user(f"{uuid.uuid4().hex}@example.com", "x")
        loop = asyncio.new_event_loop()
        client = loop.run_until_complete(Client.connect(address))

        def started_at(workflow_id: str) -> datetime:
            for _ in range(400):
                try:
                    desc = loop.run_until_complete(
                        client.get_workflow_handle(workflow_id).describe()
                    )
                    return desc.start_time
                except Exception:
                    time.sleep(0.005)
            raise SystemExit(f"{workflow_id} never started")

        outbox, direct = [], []
        for i in range(args.starts):
            tenant = tenant_create(name="Bench", subdomain=f"b{uuid.uuid4().hex[:12]}", owner=owner)
            tenant_request_provisioning(tenant_id=tenant.pk)
            committed = datetime.now(UTC)
            outbox.append(
                (started_at(f"tenant-provision-{tenant.pk}") - committed).total_seconds() * 1000
            )
            workflow_id = f"bench-direct-{i}-{uuid.uuid4().hex[:6]}"
            before = datetime.now(UTC)
            loop.run_until_complete(
                client.start_workflow(
                    "TenantProvisioningWorkflow",
                    {"tenant_id": str(tenant.pk)},
                    id=workflow_id,
                    task_queue="bench.direct",
                )
            )
            direct.append((started_at(workflow_id) - before).total_seconds() * 1000)
            time.sleep(0.02)
        pending = OutboxEntry.objects.filter(status=OutboxStatus.PENDING).count()
        retried = OutboxEntry.objects.filter(attempts__gt=1).count()
        connection.close()
        (om, op), (dm, dp) = median_p95(outbox), median_p95(direct)
        print(f"{args.starts} starts each; relay woken by NOTIFY (2 s safety-net poll)")
        print(f"{'path':<44}{'median ms':>10}{'p95 ms':>10}")
        print(f"{'commit -> started, through the outbox':<44}{om:>10.1f}{op:>10.1f}")
        print(f"{'baseline: start_workflow() -> started':<44}{dm:>10.1f}{dp:>10.1f}")
        print(f"{'ratio outbox / direct':<44}{om / dm:>10.2f}{op / dp:>10.2f}")
        print(f"rows still pending: {pending}; rows that needed more than one attempt: {retried}")
        loop.close()
    finally:
        if relay is not None:
            relay.stop()
            thread.join(10)
        if temporal is not None:
            temporal.stop()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
