"""docker-compose.yml and the Dockerfile, read without Docker.

The product's containers: the production settings with the environment the image and the
compose file give them (workers versioned, exports on a volume the image's user can write
and web can read, HTTPS settings), what is published beyond loopback, and `check --deploy`
with the documented production environment. The observability profile: the files it mounts
exist, Prometheus scrapes what the app serves where the compose file serves it, the app lets
that Prometheus (and only the `metrics` network) read /metrics, and the Grafana dashboard
names only metrics the code exports."""

import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
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


def resolved(node, env: dict[str, str] | None = None):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolved(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolved(item, env) for key, item in node.items()}
    return node


def load_compose(env: dict[str, str] | None = None) -> dict:
    """docker-compose.yml as compose reads it with ``env`` (the shell's or .env's values)."""
    return resolved(yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text()), env)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


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


# --- The product's containers ------------------------------------------------------------------

SECRET = "k" * 20 + "-production-like-secret-key-for-tests"
APP_SERVICES = ("migrate", "web", "worker")


def dockerfile() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The Dockerfile's build arguments (name: default) and its instructions, in order, as
    (INSTRUCTION, rest) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (PROJECT_DIR / "Dockerfile").read_text())
    steps = [
        tuple(line.split(None, 1))
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    args = {}
    for instruction, rest in steps:
        if instruction == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args, steps


def image_environment(build_args: dict[str, str]) -> dict[str, str]:
    """What the image's ENV lines give every container, with these build arguments."""
    args, steps = dockerfile()
    values = {**args, **build_args}
    env = {}
    for instruction, rest in steps:
        if instruction != "ENV":
            continue
        for pair in shlex.split(rest):
            name, _, value = pair.partition("=")
            env[name] = re.sub(
                r"\$\{?(\w+)\}?", lambda m: env.get(m[1], values.get(m[1], "")), value
            )
    return env


def container_environment(service: str, shell: dict[str, str] | None = None) -> dict[str, str]:
    """A compose service's environment as its process sees it: the image's ENV (built with
    the compose file's build arguments), then the compose file's own, each read with
    ``shell`` (the variables of the shell or .env that runs compose)."""
    shell = {"SECRET_KEY": SECRET, **(shell or {})}
    spec = load_compose(shell)["services"][service]
    return {**image_environment(spec["build"]["args"]), **spec["environment"]}


def run_settings(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    """``code`` after Django's set-up, in a fresh interpreter with only ``env`` (as in a
    container: nothing of this test process's environment but PATH)."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={"PATH": os.environ["PATH"], **env},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


SHOW_WORKER = (
    "import json; from django.conf import settings; "
    "from orchestration.versioning import worker_deployment_config; "
    "from orchestration.workflows._steps.versioning import VERSIONED; "
    "v = worker_deployment_config().version; "
    "print(json.dumps([settings.TEMPORAL_WORKER_VERSIONING, VERSIONED, v.deployment_name, "
    "v.build_id, settings.MEDIA_ROOT, settings.SECURE_PROXY_SSL_HEADER]))"
)


@pytest.mark.parametrize(
    ("shell", "build_id"),
    [({}, None), ({"TEMPORAL_BUILD_ID": "rev-4e97baf"}, "rev-4e97baf")],
)
def test_the_compose_workers_run_as_a_worker_deployment(shell, build_id):
    result = run_settings(container_environment("worker", shell), SHOW_WORKER)
    assert result.returncode == 0, result.stderr
    versioned, defined, name, build, media, proxy = json.loads(result.stdout.splitlines()[-1])
    # The settings and the workflow definitions agree: the worker would refuse otherwise.
    assert versioned is True
    assert defined is True
    assert name == "tenantflow"
    if build_id is None:  # the hash of the workflow and activity sources
        assert re.fullmatch(r"src-[0-9a-f]{12}", build)
    else:  # the build argument, baked into the image
        assert build == build_id
    assert media == image_environment({})["MEDIA_ROOT"]
    assert proxy is None  # gunicorn is published directly: X-Forwarded-Proto is not believed


def test_every_app_service_is_the_one_image_with_the_build_id_argument(compose):
    args, _ = dockerfile()
    assert args.get("TEMPORAL_BUILD_ID") == ""
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["image"] == "tenantflow:local", name
        assert service["build"]["args"] == {"TEMPORAL_BUILD_ID": ""}, name


def test_exports_go_to_a_volume_web_and_worker_share_that_the_image_user_owns(compose):
    media = image_environment({})["MEDIA_ROOT"]
    assert not Path(media).is_relative_to("/app")  # the code, owned by root
    for name in ("web", "worker"):
        volumes = compose["services"][name]["volumes"]
        assert f"media:{media}" in volumes, name
    assert "media" in compose["volumes"]
    # The image creates the directory owned by its user before switching to that user; a
    # new named volume copies the owner of the directory it is mounted on.
    _, steps = dockerfile()
    runs = [rest for instruction, rest in steps if instruction == "RUN"]
    users = [rest for instruction, rest in steps if instruction == "USER"]
    assert users == ["app"]
    creates = [run for run in runs if 'mkdir -p "$MEDIA_ROOT"' in run]
    assert len(creates) == 1
    assert 'chown app:app "$MEDIA_ROOT"' in creates[0]
    assert "useradd" in creates[0].split("mkdir")[0]  # the user exists by then
    assert [i for i, _ in steps].index("USER") > [r for _, r in steps].index(creates[0])


def published(service: dict) -> list[tuple[str, str]]:
    """(host address, host port) of each published port ("" for every interface)."""
    found = []
    for port in service.get("ports", []):
        parts = str(port).split(":")
        found.append((parts[0], parts[1]) if len(parts) == 3 else ("", parts[0]))
    return found


def test_only_the_web_server_is_published_beyond_loopback(compose):
    """The Temporal Web UI can cancel, terminate and signal any run and has no login; the
    frontend, Prometheus, Grafana and Jaeger have none either."""
    for name, service in compose["services"].items():
        for address, port in published(service):
            if name == "web":
                assert (address, port) == ("", "8000")
            else:
                assert address == "127.0.0.1", f"{name} publishes {port} on every interface"
    assert published(compose["services"]["temporal-ui"]) == [("127.0.0.1", "8080")]


def test_the_worker_gets_time_to_stop_gracefully(compose):
    from orchestration.management.commands.run_temporal_worker import Command

    parser = Command().create_parser("manage.py", "run_temporal_worker")
    graceful = parser.parse_args([]).graceful_timeout
    grace = compose["services"]["worker"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > graceful


def read_env_example() -> dict[str, str]:
    lines = (PROJECT_DIR / "deploy/production.env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return dict(pairs)


def test_check_deploy_is_clean_with_the_documented_production_environment():
    env = {**read_env_example(), "SECRET_KEY": SECRET}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={"PATH": os.environ["PATH"], **env},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    shown = run_settings(
        env, "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER)"
    )
    assert shown.stdout.split()[-1] == "'https')"


def test_check_deploy_names_what_the_plain_http_compose_file_leaves_off():
    """The compose file as it comes (plain HTTP on localhost, no proxy, email to the log):
    exactly the HTTPS warnings and the console mailer, so a real deployment knows what to
    set. (The shared app environment: web's adds a metrics directory that exists only in its
    container.)"""
    env = container_environment("migrate")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        env={"PATH": os.environ["PATH"], **env},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert set(re.findall(r"\((\w+\.[EW]\d+)\)", result.stdout + result.stderr)) == {
        "mail.E001",
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
    }
