"""The web server's /metrics: request metrics and the product gauges, for allowed addresses
only."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture
def web():
    return Client(HTTP_HOST="localhost")


def samples(text: str) -> dict[str, dict[tuple, float]]:
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.mark.django_db
def test_metrics_from_localhost_show_requests_and_product_gauges(web):
    assert web.get("/healthz", REMOTE_ADDR="127.0.0.1").status_code == 200
    response = web.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = samples(response.content.decode())
    healthz = (("method", "GET"), ("route", "healthz"), ("status", "200"))
    assert found["tenantflow_http_requests_total"][healthz] >= 1
    assert found["tenantflow_http_request_duration_seconds_count"][healthz[:2]] >= 1
    assert found["tenantflow_outbox_pending_rows"][()] == 0
    assert found["tenantflow_tenants"][(("status", "active"),)] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("remote", ["203.0.113.9", "10.1.2.3", "::2"])
def test_metrics_refused_to_other_addresses(web, remote):
    response = web.get("/metrics", REMOTE_ADDR=remote)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_metrics_allowed_networks_are_configurable(web, settings):
    import ipaddress

    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert web.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert web.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


@pytest.mark.django_db
def test_metrics_show_the_latest_fleet_run(web):
    from django.db import transaction

    from tenants import fleet
    from tenants.models import FleetRun

    assert "tenantflow_fleet_run_tenants" not in web.get("/metrics").content.decode()
    with transaction.atomic():
        run, _ = fleet.fleet_run_request()
    FleetRun.objects.filter(pk=run.pk).update(total=10, migrated=3, current=2)
    found = samples(web.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode())
    tenants = found["tenantflow_fleet_run_tenants"]
    assert tenants[(("outcome", "total"), ("run", run.pk))] == 10
    assert tenants[(("outcome", "migrated"), ("run", run.pk))] == 3
    assert found["tenantflow_fleet_run_open"][(("run", run.pk), ("status", "pending"))] == 1
