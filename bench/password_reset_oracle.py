"""Does the password reset request's timing tell whether an address has an account? One
client, interleaved: requests for (a) addresses that have an account, (b) addresses that
have none, (c) other addresses that have none, the same-run baseline: (c)/(b) is the noise
of two identical paths, (a)/(b) must be within it. All answer 202 with the same body.
Each kind rotates over its own 20 addresses, so the per-recipient quota rows grow alike
(the quota's cool-down is off here, and its daily limit out of reach).

    .venv/bin/python bench/password_reset_oracle.py [--requests 300]
"""

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import served  # noqa: E402
from bench.signup import PASSWORD, post  # noqa: E402

ADDRESSES = 20
KINDS = {
    "account": "ada{}@example.com",
    "no account": "nobody{}@example.com",
    "no account (baseline)": "noone{}@example.com",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per kind")
    args = parser.parse_args()
    quota = {"EMAIL_RECIPIENT_COOLDOWN": "0", "EMAIL_RECIPIENT_DAILY_LIMIT": "1000000"}
    with served("bench_reset_oracle", workers=1, threads=2, **quota) as port:
        for n in range(ADDRESSES):
            account = {
                "email": KINDS["account"].format(n),
                "password": PASSWORD,
                "organization_name": f"Org {n}",
                "subdomain": f"org{n}",
            }
            assert post(port, "/api/v1/signup/", account)[1] == 202
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for i in range(args.requests + 20):  # the first 20 rounds warm up
            for kind, address in KINDS.items():
                body = {"email": address.format(i % ADDRESSES)}
                ms, status = post(port, "/api/v1/auth/password-reset/", body)
                assert status == 202, status
                if i >= 20:
                    times[kind].append(ms)
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        print(f"{args.requests} password reset requests of each kind, one client")
        for kind, median in medians.items():
            print(f"{kind:<24}median {median:6.2f} ms")
        base = medians["no account"]
        print(f"ratio account / no account:  {medians['account'] / base:.3f}")
        print(f"baseline (no account / no account): {medians['no account (baseline)'] / base:.3f}")


if __name__ == "__main__":
    main()
