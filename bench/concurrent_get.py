"""Fire N GET requests at one URL at the same moment, in rounds; count what came back.

Meant for a running `make dev` (or any server): every client connects, waits until all are
connected, then sends its request, so the server really has N requests in flight. Prints
the count of each HTTP status and of each network error (a reset or refused connection);
exits 1 on any 5xx or network error.

    .venv/bin/python bench/concurrent_get.py [--clients 100] [--rounds 3] [URL]

URL defaults to http://127.0.0.1:8000/healthz (database and Temporal on every request).
"""

import argparse
import http.client
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit


def fire(url: str, clients: int, *, timeout: float = 30) -> Counter:
    """``clients`` concurrent GETs of ``url``: a Counter of statuses ("200", "503") and of
    error class names ("ConnectionResetError", "RemoteDisconnected")."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    together = threading.Barrier(clients)

    def one(_) -> str:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        try:
            try:
                conn.connect()
            finally:
                together.wait()  # everyone waits, even a client that failed to connect
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        finally:
            conn.close()

    with ThreadPoolExecutor(clients) as pool:
        return Counter(pool.map(one, range(clients)))


def failures(counts: Counter) -> int:
    """Requests that got a 5xx or no HTTP answer at all."""
    return sum(n for what, n in counts.items() if not what.isdigit() or what.startswith("5"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000/healthz")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"GET {args.url}")
    total = Counter()
    for n in range(1, args.rounds + 1):
        counts = fire(args.url, args.clients)
        total += counts
        print(f"round {n}: {args.clients} concurrent GETs: {dict(sorted(counts.items()))}")
    bad = failures(total)
    print(f"total: {dict(sorted(total.items()))}; 5xx or network errors: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
