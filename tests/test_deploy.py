"""docker-compose.yml's observability profile, read without Docker: the files it mounts exist,
Prometheus scrapes what the app serves where the compose file serves it, the app lets that
Prometheus (and only the `metrics` network) read /metrics, and the Grafana dashboard names
only metrics the code exports."""

import ipaddress
import json
import re
from pathlib import Path

import pytest
import temporalio.bridge
import yaml
from prometheus_client import REGISTRY

from devstack.localservices import PROJECT_DIR
from orchestration.metrics import DatabaseGauges

OBSERVABILITY = {"jaeger", "prometheus", "grafana"}
METRIC = re.compile(r"\b(?:tenantflow|temporal)_[a-z0-9_]+\b")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` (defaults may nest) and ``${VAR:?error}``
    with ``env`` (empty: every default), ``$$`` a literal ``$``."""
    env = env or {}
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("${", i):
            depth, j = 0, i
            while True:  # to the brace that closes this one (defaults may hold ${...})
                if value.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth, j = depth - (value[j] == "}"), j + 1
                if depth == 0:
                    break
            body = value[i + 2 : j - 1]
            name, sep, rest = re.match(
                r"([A-Za-z_][A-Za-z0-9_]*)(:-|:\?|)(.*)", body, re.S
            ).groups()
            if env.get(name):
                out.append(env[name])
            elif sep == ":-":
                out.append(interpolate(rest, env))
            elif sep == ":?":
                out.append(f"<required {name}>")
            else:
                out.append("")
            i = j
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def resolved(node):
    if isinstance(node, str):
        return interpolate(node)
    if isinstance(node, list):
        return [resolved(item) for item in node]
    if isinstance(node, dict):
        return {key: resolved(item) for key, item in node.items()}
    return node


@pytest.fixture(scope="module")
def compose() -> dict:
    return resolved(yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text()))


def load_yaml(path: str):
    return yaml.safe_load((PROJECT_DIR / path).read_text())


def mounts(service: dict) -> dict[str, str]:
    """{container path: host path} of a service's bind mounts (``./…``)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = source
    return found


def test_interpolation_reads_like_compose():
    assert interpolate("${A:-x}") == "x"
    assert interpolate("${A:-${B:-10.0.0.0/8}}", {"B": "1.2.3.0/24"}) == "1.2.3.0/24"
    assert interpolate("a,${A:-b},${C:-c}", {"A": "z"}) == "a,z,c"
    assert interpolate("$${A}") == "${A}"


def test_observability_is_a_profile_and_the_product_is_not(compose):
    services = compose["services"]
    assert set(services) >= OBSERVABILITY
    for name, service in services.items():
        expected = ["observability"] if name in OBSERVABILITY else None
        assert service.get("profiles") == expected, name


def test_every_mounted_file_exists(compose):
    for name, service in compose["services"].items():
        for target, source in mounts(service).items():
            assert (PROJECT_DIR / source).exists(), f"{name}: {source} (for {target}) is missing"


def test_prometheus_scrapes_the_web_server_and_the_worker_where_compose_serves_them(compose):
    services = compose["services"]
    config_path = mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"]
    jobs = {job["job_name"]: job for job in load_yaml(config_path)["scrape_configs"]}
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    web_port = services["web"]["command"][services["web"]["command"].index("--bind") + 1]
    worker_address = services["worker"]["environment"]["WORKER_METRICS_ADDRESS"]
    assert targets == {
        "web": [f"web:{web_port.rsplit(':', 1)[1]}"],
        "worker": [f"worker:{worker_address.rsplit(':', 1)[1]}"],
    }
    assert {job.get("metrics_path", "/metrics") for job in jobs.values()} == {"/metrics"}
    # Prometheus reaches both over `metrics` alone, so it scrapes from that network's subnet.
    assert services["prometheus"]["networks"] == ["metrics"]
    for name in ("web", "worker"):
        assert "metrics" in services[name]["networks"], name


def test_the_web_server_answers_prometheus_and_nobody_else(compose, client, settings, db):
    """The compose file's own values for the web service, applied to this process's settings:
    Prometheus (an address in the `metrics` subnet, Host web:8000) gets the metrics; a client
    on the default network does not."""
    from core.env import env_list, env_networks

    env = compose["services"]["web"]["environment"]
    subnet = ipaddress.ip_network(compose["networks"]["metrics"]["ipam"]["config"][0]["subnet"])
    with pytest.MonkeyPatch.context() as patch:
        for name in ("METRICS_ALLOWED_IPS", "ALLOWED_HOSTS", "PUBLIC_HOSTS"):
            patch.setenv(name, env[name])
        settings.METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_IPS", [])
        settings.ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
        settings.PUBLIC_HOSTS = [env["TENANT_BASE_DOMAIN"], *env_list("PUBLIC_HOSTS", [])]
    prometheus = str(next(subnet.hosts()) + 9)

    scraped = client.get("/metrics", HTTP_HOST="web:8000", REMOTE_ADDR=prometheus)
    outsider = client.get("/metrics", HTTP_HOST="web:8000", REMOTE_ADDR="172.18.0.1")

    assert scraped.status_code == 200
    assert b"tenantflow_outbox_pending_rows " in scraped.content
    assert outsider.status_code == 404


# --- Grafana -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grafana(compose) -> dict:
    service = compose["services"]["grafana"]
    paths = mounts(service)
    provisioning = PROJECT_DIR / paths["/etc/grafana/provisioning"]
    return {
        "service": service,
        "mounts": paths,
        "datasources": yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text()),
        "providers": yaml.safe_load((provisioning / "dashboards/tenantflow.yml").read_text()),
    }


def dashboards(grafana) -> dict[str, dict]:
    [provider] = grafana["providers"]["providers"]
    folder = PROJECT_DIR / grafana["mounts"][provider["options"]["path"]]
    files = sorted(folder.glob("*.json"))
    assert files, f"no dashboard in {folder}"
    return {path.name: json.loads(path.read_text()) for path in files}


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose, grafana):
    [source] = grafana["datasources"]["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "metrics" in grafana["service"]["networks"]  # where prometheus is
    home = Path(grafana["service"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.name in dashboards(grafana)
    for name, dashboard in dashboards(grafana).items():
        for panel in panels(dashboard):
            for target in [panel, *panel.get("targets", [])]:
                assert target["datasource"]["uid"] == source["uid"], (name, panel["title"])


def test_the_dashboard_shows_what_the_issue_asks_for(grafana):
    exprs = " ".join(
        target["expr"]
        for dashboard in dashboards(grafana).values()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    )
    for needed in (
        'route="api:signup"',  # signups
        "tenantflow_tenant_run_duration_seconds_bucket",  # provisioning latency
        "tenantflow_outbox_pending_rows",  # outbox backlog
        "temporal_worker_task_slots_available",  # worker slots
    ):
        assert needed in exprs


def exported_by_the_code() -> set[str]:
    """Every ``tenantflow_*`` series name the web server and the worker can export."""
    import core.metrics  # noqa: F401 - registers the web server's metrics

    names = set()
    for family in [*REGISTRY.collect(), *DatabaseGauges().collect()]:
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}{end}" for end in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return {name for name in names if name.startswith("tenantflow_")}


def defined_by_the_sdk(name: str) -> bool:
    """Whether the Temporal SDK's core (the Rust bridge the worker runs) defines the metric:
    its name, less the exporter's ``temporal_`` prefix and a histogram's suffix, is a string
    in the compiled bridge."""
    bridge = next(Path(temporalio.bridge.__file__).parent.glob("temporal_sdk_bridge*"))
    base = re.sub(r"_(bucket|sum|count)$", "", name.removeprefix("temporal_"))
    return base.encode() in bridge.read_bytes()


@pytest.mark.django_db
def test_the_dashboard_names_only_metrics_the_code_exports(grafana):
    exported = exported_by_the_code()
    used = {
        name
        for dashboard in dashboards(grafana).values()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        for name in METRIC.findall(target["expr"])
    }
    assert {"tenantflow_outbox_pending_rows", "temporal_worker_task_slots_used"} <= used
    unknown = {n for n in used if n.startswith("tenantflow_") and n not in exported}
    assert not unknown, f"not exported by the code: {sorted(unknown)}"
    sdk = {n for n in used if n.startswith("temporal_")}
    assert not {n for n in sdk if not defined_by_the_sdk(n)}
    assert not defined_by_the_sdk("temporal_no_such_metric_anywhere")
