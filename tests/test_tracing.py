"""Tracing is configured by the standard OTEL_* variables alone, and is absent without them
(each case in a fresh interpreter: a process configures tracing once)."""

import http.server
import json
import logging
import os
import subprocess
import sys
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider

from core import tracing
from core.logs import ContextFilter, JsonFormatter
from devstack.localservices import PROJECT_DIR

PROBE = """
import json, os
import django
django.setup()
import psycopg
from django.conf import settings
from core import tracing
on = tracing.configure("tenantflow-web")
state = {
    "on": on,
    "first_middleware": settings.MIDDLEWARE[0],
    "interceptors": [type(i).__name__ for i in tracing.temporal_interceptors()],
    "psycopg_wrapped": hasattr(psycopg.connect, "__wrapped__"),
}
print("STATE " + json.dumps(state), flush=True)
if on:
    with tracing.continued({}, "probe"):
        pass
    tracing.shutdown()
"""
OTEL_MIDDLEWARE = (
    "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
)


def _env(**otel: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**clean, "DJANGO_SETTINGS_MODULE": "config.settings.test", **otel}


def probe(**otel: str) -> tuple[dict, subprocess.CompletedProcess]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=_env(**otel),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("STATE "))
    return json.loads(line.removeprefix("STATE ")), result


@pytest.mark.parametrize(
    "otel",
    [
        {},
        # Endpoint and name alone choose no exporter (`none` and OTEL_SDK_DISABLED: below).
        {"OTEL_SERVICE_NAME": "shop", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    ],
)
def test_without_an_exporter_nothing_is_installed(otel):
    state, _ = probe(**otel)
    assert state == {
        "on": False,
        "first_middleware": "core.logs.RequestIdMiddleware",
        "interceptors": [],
        "psycopg_wrapped": False,
    }


def test_console_exporter_installs_everything_and_names_the_service():
    state, result = probe(OTEL_TRACES_EXPORTER="console")
    assert state == {
        "on": True,
        "first_middleware": OTEL_MIDDLEWARE,
        "interceptors": ["TracingInterceptor"],
        "psycopg_wrapped": True,
    }
    assert '"name": "probe"' in result.stdout
    assert '"service.name": "tenantflow-web"' in result.stdout


def test_the_sdks_own_variables_apply():
    _, result = probe(
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="shop",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging",
        OTEL_TRACES_SAMPLER="always_off",
    )
    assert '"name": "probe"' not in result.stdout  # sampled out
    _, result = probe(
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="shop",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging",
    )
    assert '"service.name": "shop"' in result.stdout
    assert '"deployment.environment": "staging"' in result.stdout


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str]]

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.received.append((self.path, self.headers.get("Content-Type", "")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_otlp_without_a_protocol_sends_protobuf_over_http():
    received: list[tuple[str, str]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        state, _ = probe(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    finally:
        server.shutdown()
        server.server_close()
    assert state["on"]
    assert received == [("/v1/traces", "application/x-protobuf")]


@pytest.mark.parametrize(
    ("otel", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "Requested component 'jaeger' not found"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "'otlp_proto_grpc' not found",
        ),
    ],
)
def test_an_exporter_that_cannot_be_had_stops_start_up_naming_the_variable(otel, message):
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=_env(**otel),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: OTEL_TRACES_EXPORTER=" in result.stderr
    assert message in result.stderr


def test_the_worker_refuses_an_unknown_exporter_with_a_command_error():
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "manage.py"), "run_temporal_worker"],
        env=_env(OTEL_TRACES_EXPORTER="zipkin"),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "CommandError: OTEL_TRACES_EXPORTER='zipkin'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": " None "}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp_proto_http", "console"]),
        # A protocol variable leaves the choice to the SDK's own resolution.
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}, []),
        ({"OTEL_TRACES_EXPORTER": "console,none"}, ["console"]),
    ],
)
def test_exporter_names(env, names):
    assert tracing.exporter_names(env) == names


def test_log_lines_carry_the_current_spans_trace_and_span_ids():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "inside", None, None)
    outside = logging.LogRecord("t", logging.INFO, __file__, 1, "outside", None, None)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        ContextFilter().filter(record)
    ContextFilter().filter(outside)
    line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in json.loads(JsonFormatter().format(outside))
