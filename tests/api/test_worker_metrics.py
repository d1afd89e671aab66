"""The worker's one metrics endpoint (WORKER_METRICS_ADDRESS): the Temporal SDK's metrics and
the product's, after a signup it provisioned."""

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenants.models import Tenant, TenantStatus
from tests.api.conftest import signup
from tests.kit import wait_until
from tests.workers import SHARDS, settled

pytestmark = pytest.mark.usefixtures("drop_tenant_schemas")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(url: str) -> dict[str, dict[tuple, float]] | None:
    """{sample name: {labels: value}}, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return None
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_worker_serves_sdk_and_product_metrics_on_one_address(
    api, start_worker, prefix, settings, monkeypatch
):
    settings.TEMPORAL_QUEUE_PREFIX, settings.TEMPORAL_QUEUE_SHARDS = prefix, SHARDS
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("WORKER_METRICS_ADDRESS", address)
    _proc, log = start_worker()
    url = f"http://{address}/metrics"
    wait_until(lambda: scrape(url), timeout=60, what=f"metrics on {address} ({log})")

    assert signup(api).status_code == 202
    tenant = settled(Tenant.objects.get().pk, TenantStatus.ACTIVE, TenantStatus.FAILED)
    assert tenant.status == TenantStatus.ACTIVE, tenant.last_error

    def provisioned():
        samples = scrape(url) or {}
        runs = samples.get("tenantflow_tenant_run_duration_seconds_count", {})
        done = runs.get((("run", "provisioning"),), 0) >= 1
        pending = samples.get("tenantflow_outbox_pending_rows", {}).get((), None)
        return samples if done and pending == 0 else None

    samples = wait_until(provisioned, timeout=60, what="one provisioning run and no pending row")
    assert any(name.startswith("temporal_") for name in samples), sorted(samples)
    assert samples["tenantflow_outbox_oldest_pending_age_seconds"][()] == 0
    assert samples["tenantflow_tenants"][(("status", "active"),)] == 1
    assert samples["tenantflow_tenant_run_duration_seconds_count"][(("run", "provisioning"),)] == 1
    # The signup's starts (provisioning and onboarding) went through the relay.
    assert samples["tenantflow_relay_start_latency_seconds_count"][()] >= 2
    assert samples["tenantflow_relay_errors_total"][(("kind", "permanent"),)] == 0
