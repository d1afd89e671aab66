"""One signup is one trace: the request, its database statements, the outbox row, the relay's
start, the workflow and every provisioning activity (with their statements) share a trace id.
"""

import pytest
from opentelemetry.trace import SpanKind

from core import tracing
from orchestration.models import OutboxEntry
from tenants.models import TenantStatus
from tests.api.conftest import signup
from tests.kit import wait_until
from tests.workers import BackgroundWorker, settled

pytestmark = pytest.mark.usefixtures("queue_prefix", "drop_tenant_schemas")


def _named(spans, name: str):
    found = [span for span in spans if span.name == name]
    assert found, f"no span {name!r} among {sorted({span.name for span in spans})}"
    return found[0]


def _children(spans, parent):
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


@pytest.mark.usefixtures("schemas_by_migrations")  # the schema step on the task queue
def test_one_signup_is_one_trace_from_request_to_every_activity(api, temporal, spans):
    response = signup(api)
    assert response.status_code == 202
    request = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert request.attributes["http.route"] == "api/v1/signup/"
    trace_id = request.context.trace_id
    # The row carries the request's context; the transaction's statements are its children.
    row = OutboxEntry.objects.get(workflow_type="TenantProvisioningWorkflow")
    assert row.trace_context["traceparent"].split("-")[1] == format(trace_id, "032x")
    assert any(
        s.attributes.get("db.system") == "postgresql"
        for s in _children(spans.get_finished_spans(), request)
    )

    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        settled(response.json()["tenant"]["id"], TenantStatus.ACTIVE, TenantStatus.FAILED)

        # The last step's span ends a moment after the status it wrote, and the span of
        # its group (the local activity) a moment after that.
        def with_last_group():
            finished = spans.get_finished_spans()
            last = [x for x in finished if x.name == "RunStep:tenant_mark_active"]
            ids = {x.context.span_id for x in finished}
            return last and last[0].parent.span_id in ids and finished

        finished = wait_until(
            with_last_group, timeout=30, what="the spans of the provisioning run's last group"
        )

    relay = _named(finished, "outbox start TenantProvisioningWorkflow")
    assert relay.parent.span_id == request.context.span_id
    start = _named(finished, "StartWorkflow:TenantProvisioningWorkflow")
    assert start.parent.span_id == relay.context.span_id
    run = _named(finished, "RunWorkflow:TenantProvisioningWorkflow")
    assert run.parent.span_id == start.context.span_id
    # The interceptor's workflow spans are instants, all children of the start.
    schedule = _named(finished, "StartActivity:tenant_create_schema")
    assert schedule.parent.span_id == start.context.span_id
    create_schema = _named(finished, "RunActivity:tenant_create_schema")
    assert create_schema.parent.span_id == schedule.context.span_id
    # The steps after the schema run as one local activity, a span each inside its span.
    groups = [s for s in finished if s.name == "RunActivity:tenant_run_steps"]
    last = _named(finished, "RunStep:tenant_mark_active")
    (group,) = [g for g in groups if g.context.span_id == last.parent.span_id]
    for span in (relay, start, run, schedule, create_schema, group, last):
        assert span.context.trace_id == trace_id, span.name
    # Database statements inside an activity are children of its span.
    statements = _children(finished, create_schema)
    assert any(s.attributes.get("db.system") == "postgresql" for s in statements)


def test_tracing_off_stores_no_trace_context_and_adds_no_interceptor(api, db):
    assert not tracing.enabled()
    assert tracing.temporal_interceptors() == []
    assert signup(api).status_code == 202
    rows = list(OutboxEntry.objects.values_list("trace_context", flat=True))
    assert rows
    assert rows == [{}] * len(rows)
