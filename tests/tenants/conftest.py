import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
APT_TIMEOUT = 300  # seconds, per apt-get call


def _apt(*args: str) -> str:
    """Run apt-get; returns "" on success, else one line saying why not."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(
            ["apt-get", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"apt-get {args[0]}: {exc}"
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"apt-get {args[0]} exited {result.returncode}: {tail}"
    return ""


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, installed with apt-get when missing and we are root; otherwise the
    browser tests are skipped with the reason. (``playwright install`` is never used: it
    downloads from hosts this project must not depend on.)"""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and there is no root apt-get to install it")
    install = ("install", "-y", "-q", "--no-install-recommends", "chromium")
    # The package lists are refreshed only when installing without them fails.
    error = _apt(*install)
    if error:
        error = _apt("update", "-q") or _apt(*install)
    if error or not CHROMIUM.exists():
        pytest.skip(f"could not install chromium: {error or f'{CHROMIUM} still missing'}")
    return str(CHROMIUM)


@pytest.fixture
def new_schema(transactional_db):
    """Names for new tenant schemas; every one is dropped at the end."""
    from django.db import connection

    made = []

    def name() -> str:
        made.append(f"t_{uuid.uuid4().hex}")
        return made[-1]

    yield name
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for schema in made:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def signals_sent():
    """``record = signals_sent({signal: name, ...})`` connects a listener to each signal for
    the test; ``record`` lists what was sent, in order, as (name, sender, kwargs)."""
    seen, connected = [], []

    def connect(names: dict) -> list:
        for signal, name in names.items():
            receiver = (lambda n: lambda sender, **kwargs: seen.append((n, sender, kwargs)))(name)
            signal.connect(receiver, weak=False)
            connected.append((signal, receiver))
        return seen

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)
