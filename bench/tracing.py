"""Tracing off vs on: what a signup request and a provisioning run cost with traces exported.

Two copies of the product run side by side on this machine, each on its own database and
task queues, against one Temporal dev server: "off" with no OTEL_* variable, "on" with
``OTEL_TRACES_EXPORTER=otlp`` sending OTLP/HTTP to a collector stand-in in this process
(it reads, decodes and counts the spans, then answers 200: the exporter does all its real
work, only the network hop is local). Everything else is equal, and the two are measured in
interleaved turns, so machine noise hits both.

* signup: ``POST /api/v1/signup/`` latency, gunicorn (2 workers x 4 threads), 4 clients,
  web only (no worker competes for the CPU); the tests' MD5 password hasher, so that
  PBKDF2 does not hide what tracing adds.
* provisioning: 202 -> tenant ``active`` (read from the database every 10 ms), one signup
  at a time, each copy with its own worker process (relay, workflow, activities).

Prints medians and p95 (ms) and the on/off ratio of medians, and how many spans arrived.

    .venv/bin/python bench/tracing.py [--requests 200] [--provisionings 20]
"""

import argparse
import contextlib
import http.client
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

from bench.server import served  # noqa: E402
from bench.stats import median_p95  # noqa: E402
from devstack.localservices import (  # noqa: E402
    LOCAL_DIR,
    TemporalDevServer,
    ensure_database,
    start_postgres,
    stop_process_group,
)

PASSWORD = "correct horse battery staple"  # noqa: S105
MODES = ("off", "on")


class Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP trace endpoint that counts what it is sent."""

    spans = 0
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with Collector.lock:
            Collector.spans += count
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def signup(port: int) -> tuple[float, str]:
    key = uuid.uuid4().hex[:12]
    body = {
        "email": f"{key}@example.com",
        "password": PASSWORD,
        "organization_name": f"Org {key}",
        "subdomain": f"b{key}",
    }
    conn = http.client.HTTPConnection("localhost", port, timeout=60)
    started = time.perf_counter()
    conn.request("POST", "/api/v1/signup/", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    if response.status != 202:
        raise SystemExit(f"signup answered {response.status}: {payload[:300]!r}")
    return elapsed, json.loads(payload)["tenant"]["id"]


def signups(port: int, n: int, clients: int) -> list[float]:
    with ThreadPoolExecutor(clients) as pool:
        return [ms for ms, _ in pool.map(lambda _: signup(port), range(n))]


def provision_once(port: int, database_url: str) -> float:
    """ms from the 202 to the tenant's status ``active``."""
    _, tenant_id = signup(port)
    answered = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT status FROM tenants_tenant WHERE id = %s", [tenant_id])
            status = row.fetchone()[0]
            if status == "active":
                return (time.perf_counter() - answered) * 1000
            if status == "failed" or time.perf_counter() - answered > 120:
                raise SystemExit(f"tenant {tenant_id} is {status}")
            time.sleep(0.01)


def report(title: str, times: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    for mode in MODES:
        median, p95 = median_p95(times[mode])
        print(
            f"  tracing {mode:3}  n={len(times[mode]):4}  median {median:8.1f} ms  p95 {p95:8.1f}"
        )
    ratio = statistics.median(times["on"]) / statistics.median(times["off"])
    print(f"  on/off ratio of medians: {ratio:.2f}")


@contextlib.contextmanager
def worker(env: dict[str, str]):
    """``run_temporal_worker`` (with its relay); its output (the console emails of
    onboarding) goes to .local/bench-tracing-<queue prefix>.log."""
    with open(LOCAL_DIR / f"bench-tracing-{env['TEMPORAL_QUEUE_PREFIX']}.log", "wb") as log:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "manage.py"), "run_temporal_worker"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            stop_process_group(proc, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="signups per mode (>= 40)")
    parser.add_argument("--provisionings", type=int, default=20, help="per mode (>= 5)")
    args = parser.parse_args()
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    postgres = start_postgres(LOCAL_DIR / "pg-bench")
    temporal = TemporalDevServer().start()
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    common = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
        "TEMPORAL_ADDRESS": temporal.address,
        "BENCH_FAST_HASHER": "1",
    }
    otel = {
        "off": {},
        "on": {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
    }
    os.environ.clear()
    os.environ.update(base)
    try:
        with contextlib.ExitStack() as stack:
            urls = {m: ensure_database(postgres, f"bench_tracing_{m}", fresh=True) for m in MODES}
            envs = {
                m: {**common, **otel[m], "DATABASE_URL": urls[m], "TEMPORAL_QUEUE_PREFIX": f"bt{m}"}
                for m in MODES
            }
            ports = {
                m: stack.enter_context(
                    served(f"bench_tracing_{m}", workers=2, threads=4, **envs[m])
                )
                for m in MODES
            }
            # Provisioning first, while nothing is queued; the request rounds after it run
            # with the workers stopped (their rows just wait).
            with contextlib.ExitStack() as workers:
                for mode in MODES:
                    workers.enter_context(worker({**base, **envs[mode]}))
                for mode in MODES:  # warm-up: imports, connections, pollers
                    provision_once(ports[mode], urls[mode])
                provisioning = {m: [] for m in MODES}
                for _ in range(args.provisionings):
                    for mode in MODES:
                        provisioning[mode].append(provision_once(ports[mode], urls[mode]))
            for mode in MODES:
                signups(ports[mode], 20, 4)  # warm-up
            requests = {m: [] for m in MODES}
            rounds = 4
            for _ in range(rounds):
                for mode in MODES:
                    requests[mode] += signups(ports[mode], args.requests // rounds, 4)
            report("provisioning, 202 -> active (one at a time)", provisioning)
            report("signup request (4 clients, no worker running)", requests)
        # The worker and web server flush their batches on their way out.
        print(f"\nspans received by the collector from the 'on' copy: {Collector.spans}")
    finally:
        collector.shutdown()
        temporal.stop()
        postgres.cleanup()


if __name__ == "__main__":
    main()
