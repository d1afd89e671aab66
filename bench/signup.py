"""Signup latency under 20 concurrent clients, against a baseline measured in the same run.

The product's ``POST /api/v1/signup/`` (user, tenant, membership, two tokens and two outbox
rows in one transaction; no call to Temporal) is timed beside a plain DRF endpoint that
only creates a user with a password — the floor for "an API call that writes a user".
Both run on the same gunicorn server (2 workers x 10 threads), same database, interleaved
rounds, 20 client threads each. Prints median, p95 and p99 (ms) and the ratios.

    .venv/bin/python bench/signup.py [--requests 400] [--clients 20]
"""

import argparse
import http.client
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import served  # noqa: E402
from bench.stats import summary  # noqa: E402

PASSWORD = "correct horse battery staple"  # noqa: S105


def post(port: int, path: str, body: dict) -> tuple[float, int]:
    conn = http.client.HTTPConnection("localhost", port, timeout=60)
    started = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    status = conn.getresponse().status
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed * 1000, status


def run_round(port: int, kind: str, n: int, clients: int) -> list[float]:
    def one(_):
        key = uuid.uuid4().hex[:12]
        if kind == "signup":
            body = {
                "email": f"{key}@example.com",
                "password": PASSWORD,
                "organization_name": f"Org {key}",
                "subdomain": f"b{key}",
            }
            return post(port, "/api/v1/signup/", body)
        return post(
            port, "/bench/create-user/", {"email": f"{key}@example.com", "password": PASSWORD}
        )

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(n)))
    bad = [status for _, status in results if status not in (201, 202)]
    if bad:
        raise SystemExit(f"{kind}: {len(bad)} failed requests (e.g. HTTP {bad[0]})")
    return [ms for ms, _ in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per endpoint (>= 100)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--fast-hasher",
        action="store_true",
        help="hash passwords with MD5 (tests' hasher) to show what is not password hashing",
    )
    args = parser.parse_args()
    extra = {"BENCH_FAST_HASHER": "1"} if args.fast_hasher else {}
    with served("bench_signup", workers=2, threads=10, **extra) as port:
        run_round(port, "baseline", 40, args.clients)  # warm-up: connections, imports
        run_round(port, "signup", 40, args.clients)
        times = {"baseline": [], "signup": []}
        for _ in range(4):  # interleaved, so machine noise hits both
            for kind in times:
                times[kind] += run_round(port, kind, args.requests // 4, args.clients)
        hasher = "MD5 (--fast-hasher)" if args.fast_hasher else "Django's default (PBKDF2)"
        print(
            f"{args.clients} concurrent clients, {args.requests} requests per endpoint, "
            f"password hasher: {hasher}"
        )
        print(f"{'endpoint':<34}{'median ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
        rows = {
            "POST /api/v1/signup/": times["signup"],
            "baseline: DRF create user": times["baseline"],
        }
        for name, values in rows.items():
            med, p95, p99 = summary(values, 95, 99)
            print(f"{name:<34}{med:>10.1f}{p95:>10.1f}{p99:>10.1f}")
        s, b = summary(times["signup"], 95, 99), summary(times["baseline"], 95, 99)
        ratios = "".join(f"{x / y:>10.2f}" for x, y in zip(s, b, strict=True))
        print(f"{'ratio signup / baseline':<34}{ratios}")


if __name__ == "__main__":
    main()
