"""Does signup's timing tell whether an email has an account? One client, interleaved:
signups with a taken subdomain and (a) an email that has an account, (b) one that has none.
Both answer 400 with the same body; this prints each median and their ratio (1.00 = no
oracle). Django's default password hasher (PBKDF2), as in production.

    .venv/bin/python bench/signup_oracle.py [--requests 200]
"""

import argparse
import statistics
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import served  # noqa: E402
from bench.signup import PASSWORD, post  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per kind")
    args = parser.parse_args()
    with served("bench_oracle", workers=1, threads=2) as port:
        taken = {
            "email": "taken@example.com",
            "password": PASSWORD,
            "organization_name": "Taken",
            "subdomain": "taken",
        }
        assert post(port, "/api/v1/signup/", taken)[1] == 202
        times = {"registered email": [], "unregistered email": []}
        for _ in range(args.requests):
            for kind in times:
                email = "taken@example.com" if kind == "registered email" else None
                body = {**taken, "email": email or f"{uuid.uuid4().hex[:12]}@example.com"}
                ms, status = post(port, "/api/v1/signup/", body)
                assert status == 400, status
                times[kind].append(ms)
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        print(f"{args.requests} signups of each kind, taken subdomain, one client, PBKDF2")
        for kind, median in medians.items():
            print(f"{kind:<22}median {median:7.1f} ms")
        ratio = medians["registered email"] / medians["unregistered email"]
        print(f"ratio registered / unregistered: {ratio:.2f}")


if __name__ == "__main__":
    main()
