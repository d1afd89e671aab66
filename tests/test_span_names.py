"""Server spans are named as OpenTelemetry's HTTP semantic conventions ask:
``{method} {http.route}``, ``{method}`` when no route matched, ``HTTP`` for a method outside
the known ones. The cases follow opentelemetry-python-contrib's own Django instrumentation
tests (``test_middleware.py``: ``test_traced_get``, ``test_traced_post``,
``test_templated_route_get``, ``test_span_name_404``, ``test_nonstandard_http_method``),
on this project's per-host URL confs."""

import uuid

import pytest
from opentelemetry.trace import SpanKind
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _server_span(spans):
    found = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(found) == 1, [s.name for s in found]
    return found[0]


@pytest.mark.parametrize(
    ("method", "path", "name", "route"),
    [
        ("GET", "/healthz", "GET healthz", "healthz"),  # test_traced_get
        ("POST", "/api/v1/signup/", "POST api/v1/signup/", "api/v1/signup/"),  # test_traced_post
        # test_templated_route_get: the template, never the path that matched it
        (
            "GET",
            f"/api/v1/tenants/{uuid.uuid4()}/",
            "GET api/v1/tenants/<str:tenant_id>/",
            "api/v1/tenants/<str:tenant_id>/",
        ),
        ("GET", "/no/such/path/", "GET", None),  # test_span_name_404
    ],
)
def test_a_server_span_is_named_method_and_route(spans, method, path, name, route):
    client = APIClient(HTTP_HOST="localhost", raise_request_exception=False)
    client.generic(method, path, "{}", content_type="application/json")
    span = _server_span(spans)
    assert span.name == name
    assert span.attributes.get("http.route") == route


def test_an_unknown_method_is_named_http(spans):  # test_nonstandard_http_method
    APIClient(HTTP_HOST="localhost", raise_request_exception=False).generic(
        "NONSTANDARD", "/healthz"
    )
    span = _server_span(spans)
    assert span.name == "HTTP"
    assert (
        span.attributes.get("http.request.method", span.attributes.get("http.method")) == "_OTHER"
    )
