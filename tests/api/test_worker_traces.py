"""The worker as a real process traces as its OTEL_* environment asks (as under `make dev`,
whose worker inherits the variables): the relay's start, the workflow and its activities in
one trace, named after the worker."""

import json
import signal

import pytest

from tenants.models import Tenant, TenantStatus
from tests.api.conftest import signup
from tests.kit import wait_until
from tests.workers import SHARDS, settled

# The schema step on the task queue: its activity's span is among those checked.
pytestmark = pytest.mark.usefixtures("drop_tenant_schemas", "schemas_by_migrations")


def console_spans(text: str) -> list[dict]:
    """The spans the console exporter printed (one indented JSON object each) among the
    process's log lines."""
    spans, lines = [], None
    for line in text.splitlines():
        if line == "{":
            lines = [line]
        elif lines is not None:
            lines.append(line)
            if line == "}":
                spans.append(json.loads("\n".join(lines)))
                lines = None
    return spans


def test_worker_process_exports_one_trace_per_provisioning(
    api, start_worker, prefix, settings, monkeypatch
):
    settings.TEMPORAL_QUEUE_PREFIX, settings.TEMPORAL_QUEUE_SHARDS = prefix, SHARDS
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # the SDK's batching, in ms
    proc, log = start_worker()

    assert signup(api).status_code == 202
    tenant = settled(Tenant.objects.get().pk, TenantStatus.ACTIVE, TenantStatus.FAILED)
    assert tenant.status == TenantStatus.ACTIVE, tenant.last_error
    wait_until(
        lambda: '"name": "RunStep:tenant_mark_active"' in log.read_text(),
        timeout=30,
        what=f"the last activity's span in {log}",
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0

    spans = {span["name"]: span for span in console_spans(log.read_text())}
    relay = spans["outbox start TenantProvisioningWorkflow"]
    trace_id = relay["context"]["trace_id"]
    for name in (
        "StartWorkflow:TenantProvisioningWorkflow",
        "RunWorkflow:TenantProvisioningWorkflow",
        "RunActivity:tenant_create_schema",
        "RunActivity:tenant_run_steps",  # the steps after the schema, as one local activity
        "RunStep:tenant_mark_active",
    ):
        assert spans[name]["context"]["trace_id"] == trace_id, name
    assert relay["resource"]["attributes"]["service.name"] == "tenantflow-worker"
    # The relay's own polling statements are not traced; an activity's statements are.
    every = console_spans(log.read_text())
    statements = [span for span in every if "db.system" in span["attributes"]]
    assert statements
    assert all(span["parent_id"] for span in statements)
