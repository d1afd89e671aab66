"""A stalled database (every PostgreSQL process stopped: a storage stall, a partition, a
failover under way) fails requests fast instead of holding every thread, and the server
serves again as soon as it answers.

Black-box: `make dev`'s web server (its command, local settings) against the test database's
server, which the test stops with SIGSTOP and resumes with SIGCONT."""

import http.client
import json
import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connection

SIGNUP = {"password": "correct horse battery staple", "organization_name": "Stall"}


def _postgres_processes() -> list[int]:
    """The postmaster of the test database's server and all its children."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    postmaster = _parent(backend)
    children = [
        int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == postmaster
    ]
    return [postmaster, *children]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


class _Web:
    """A client of the server on ``port``: each call returns (seconds taken, status, headers,
    JSON body)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(self, method: str, path: str, body: dict | None = None):
        web = http.client.HTTPConnection("localhost", self.port, timeout=30)
        started = time.monotonic()
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if body is not None else {}
            web.request(method, path, body=data, headers=headers)
            response = web.getresponse()
            content = response.read()
        finally:
            web.close()
        return time.monotonic() - started, response.status, response, json.loads(content)


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="stops the PostgreSQL processes: local only"
)
def test_a_stalled_database_answers_503_fast_and_serves_again_after(
    empty_database_cache, dev_web_server
):
    port, log = dev_web_server()
    stopped: list[int] = []
    try:
        web = _Web(port)
        first = {**SIGNUP, "email": "a@example.com", "subdomain": "stall-a"}
        assert web("POST", "/api/v1/signup/", first)[1] == 202, log.read_text()[-3000:]

        stopped = _postgres_processes()
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        for path in ("/healthz", "/readyz"):
            took, status, response, answer = web("GET", path)
            assert (status, answer["database"]) == (503, "unavailable"), (path, answer)
            # Within 1 s of work here; the bound leaves room for a loaded machine, and a
            # request that waited for the database would take until the SIGCONT.
            assert took < 5, (path, took)
            assert response.getheader("Retry-After")
        body = {**SIGNUP, "email": "b@example.com", "subdomain": "stall-b"}
        took, status, _, answer = web("POST", "/api/v1/signup/", body)
        assert (status, answer) == (
            503,
            {"detail": "The service is unavailable right now; try again shortly."},
        )
        assert took < 10, took

        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        stopped = []
        deadline = time.monotonic() + 20
        while (health := web("GET", "/healthz"))[1] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert health[3] == {"database": "ok"}
        after = web("POST", "/api/v1/signup/", body)
        assert after[1] == 202, after[3]
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
