"""The web server's request counts and latencies, observed by ``RequestMetricsMiddleware``
and served with the product's gauges at ``/metrics`` (``config.views.metrics``).

Under gunicorn each worker process has its own counters. With ``PROMETHEUS_MULTIPROC_DIR``
set (an empty directory, before the server starts), prometheus-client keeps them in files
there and every worker answers with the sum; without it a scrape sees the one worker that
answered it.
"""

import time

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "tenantflow_http_requests",
    "HTTP requests answered, by method, route (URL pattern name) and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tenantflow_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route (URL pattern name).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def route_of(request) -> str:
    """The matched URL pattern's name (bounded label values), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return match.view_name or match.route or "<unnamed>"


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        route = route_of(request)
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response
