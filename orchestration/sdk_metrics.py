"""The worker's one metrics endpoint: prometheus-client's registry plus the Temporal SDK's.

The SDK's Prometheus exporter (Rust core) serves its own HTTP endpoint and cannot add our
collectors; prometheus-client cannot add a foreign registry. So the SDK's exporter is bound
to a private loopback port, and ``SdkMetrics`` reads its text at scrape time and hands the
parsed families to prometheus-client, which serves everything on ``WORKER_METRICS_ADDRESS``.
(The alternative, the SDK's ``metric_meter`` for our metrics, has no scrape-time gauges: the
database gauges would need a periodic task and would be stale between runs.)
"""

import logging
import socket
import urllib.request
from collections.abc import Iterator

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.env import split_host_port
from orchestration.metrics import DatabaseGauges

logger = logging.getLogger(__name__)


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SdkMetrics(Collector):
    """The Temporal SDK's metrics, read from its private exporter at each scrape."""

    def __init__(self, url: str, timeout: float = 2.0):
        self.url, self.timeout = url, timeout

    def describe(self) -> list:
        return []  # no request to the exporter when registered

    def collect(self) -> Iterator:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310
                text = response.read().decode()
        except OSError as exc:
            logger.warning("metrics: Temporal SDK metrics unavailable (%s)", exc)
            return
        yield from text_string_to_metric_families(text)


def serve(address: str) -> Runtime:
    """Serve every metric of this process on ``address`` and return the Temporal runtime
    whose clients report the SDK's metrics there (pass it to ``client.connect``)."""
    host, port = split_host_port(address)
    private = f"127.0.0.1:{_free_loopback_port()}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=private)))
    REGISTRY.register(SdkMetrics(f"http://{private}/metrics"))
    REGISTRY.register(DatabaseGauges(close_connection=True))
    start_http_server(port, addr=host, registry=REGISTRY)
    logger.info("metrics on http://%s/metrics", address)
    return runtime
