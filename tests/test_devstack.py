"""`make dev` heals: crashed children come back with back-off, everything stops on SIGTERM,
a port in TIME_WAIT is free, and the Temporal dev server never sees the app's OTEL_*."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import devstack
from devstack.localservices import PROJECT_DIR, TemporalDevServer, port_is_free
from devstack.supervisor import Backoff, Supervised


class FakeProcess:
    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None

    def poll(self):
        return self.returncode


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_backoff_doubles_up_to_its_maximum_and_resets():
    backoff = Backoff(initial=1, maximum=30)
    assert [backoff.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 1


def test_a_crashed_child_is_restarted_after_a_growing_delay():
    clock, said, spawned, ended = Clock(), [], [], []

    def spawn(command):
        spawned.append(FakeProcess(len(spawned) + 1))
        return spawned[-1]

    def end(proc, timeout):
        ended.append(proc.pid)

    child = Supervised(
        "worker", ["run"], say=said.append, spawn=spawn, end=end, clock=clock, healthy_after=30
    )
    child.start()
    child.check()
    assert (len(spawned), said) == (1, [])

    spawned[0].returncode = -9
    clock.now += 5
    child.check()
    assert said == ["worker exited with -9; restarting in 1 s"]
    assert ended == [1]  # its process group, for what it left behind
    clock.now += 0.5
    child.check()
    assert len(spawned) == 1  # not before the delay
    clock.now += 0.5
    child.check()
    assert len(spawned) == 2
    assert said[-1] == "worker: restarting (restart 1)"

    spawned[1].returncode = 1  # a crash loop: the delay grows
    clock.now += 1
    child.check()
    assert said[-1] == "worker exited with 1; restarting in 2 s"
    clock.now += 2
    child.check()
    spawned[2].returncode = 1
    clock.now += 31  # ran long enough to count as healthy: back to the first delay
    child.check()
    assert said[-1] == "worker exited with 1; restarting in 1 s"

    child.stop()
    clock.now += 10
    child.check()
    assert len(spawned) == 3  # stopped: no more restarts
    assert ended[-1] == 3


def test_postgres_keeper_restarts_a_stopped_postgres_with_backoff(monkeypatch, capsys):
    clock, state, attempts = Clock(), {"running": True}, []

    def restart(server):
        attempts.append(clock.now)
        if len(attempts) == 1:
            raise RuntimeError("shared memory still in use")
        state["running"] = True

    monkeypatch.setattr(devstack, "postgres_running", lambda server: state["running"])
    monkeypatch.setattr(devstack, "restart_postgres", restart)
    keeper = devstack.PostgresKeeper(object(), clock=clock)
    keeper.check()
    state["running"] = False
    for _ in range(8):
        keeper.check()
        clock.now += 0.5
    assert attempts == [101.0, 103.0]  # 1 s, then 2 s after the failed attempt
    assert state["running"]
    out = capsys.readouterr().out
    assert "PostgreSQL is not running; restarting it in 1 s" in out
    assert "PostgreSQL did not start (RuntimeError); retrying in 2 s" in out
    assert "PostgreSQL is up again" in out


def test_a_listening_port_is_busy_and_one_in_time_wait_is_free():
    listener = socket.socket()
    # As runserver, gunicorn and Temporal do; Linux lets a new socket bind over TIME_WAIT
    # only when both sockets asked for it.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    assert not port_is_free(port)

    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end of the connection is in TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    with socket.socket() as plain, pytest.raises(OSError, match="in use"):
        plain.bind(("127.0.0.1", port))  # the check that got this wrong
    assert port_is_free(port)


def test_temporal_dev_server_starts_with_the_apps_otel_variables_removed(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tenantflow")
    assert not any(key.startswith("OTEL_") for key in TemporalDevServer.environment())
    server = TemporalDevServer().start()  # refused to start with OTEL_TRACES_EXPORTER=console
    server.stop()


SUPERVISOR = """
import signal, sys
from devstack import Stop, supervise
from devstack.supervisor import Backoff, Supervised

stop = Stop()
signal.signal(signal.SIGTERM, stop)
child = Supervised("dummy", [sys.executable, "-c", sys.argv[1], sys.argv[2]],
                   say=lambda m: print("[dev]", m, flush=True),
                   backoff=Backoff(initial=0.2))
child.start()
try:
    supervise([child], stop, interval=0.05)
finally:
    child.stop(timeout=5)
print("stopped", flush=True)
"""

# Starts a grandchild (as runserver's autoreloader does), records both pids, crashes on
# its first run and stays up on the next.
CHILD = """
import os, subprocess, sys, time
grandchild = subprocess.Popen(["sleep", "60"])
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()} {grandchild.pid}\\n")
if len(open(sys.argv[1]).read().splitlines()) == 1:
    time.sleep(0.2)
    os._exit(3)
time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie not yet reaped by init is gone too
        return stat.read().split(") ")[1].startswith("Z")


def test_the_supervisor_restarts_a_crashed_child_and_leaves_nothing_on_sigterm(tmp_path):
    pids = tmp_path / "pids"
    supervisor = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SUPERVISOR), CHILD, str(pids)],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if pids.exists() and len(pids.read_text().splitlines()) == 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the crashed child was not restarted")
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=15)
    finally:
        supervisor.kill()
    assert "[dev] dummy exited with 3; restarting in 0.2 s" in out
    assert "[dev] dummy: restarting (restart 1)" in out
    assert out.rstrip().endswith("stopped")
    started = [int(pid) for line in pids.read_text().splitlines() for pid in line.split()]
    assert len(started) == 4
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in started if not _gone(pid)] == []


def test_emails_link_to_the_port_the_stack_serves_on():
    from devstack import stack_env

    assert stack_env({}, 8123)["PUBLIC_BASE_URL"] == "http://localhost:8123"
    mine = stack_env({"PUBLIC_BASE_URL": "https://app.example.com"}, 8123)
    assert mine["PUBLIC_BASE_URL"] == "https://app.example.com"  # set by the user: kept
    assert stack_env({"DJANGO_SETTINGS_MODULE": "x"}, 1)["DJANGO_SETTINGS_MODULE"] == (
        "config.settings.local"
    )
