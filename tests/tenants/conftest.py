import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, installed with apt-get when missing and we are root; otherwise the
    browser tests are skipped with the reason. (Playwright's own browser download is never
    used: it needs hosts this project must not depend on.)"""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("no /usr/bin/chromium and no root apt-get to install it")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (None, ["apt-get", "update", "-q"]):
        if step:
            subprocess.run(step, env=env, capture_output=True, timeout=300, check=False)
        result = subprocess.run(
            install, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode == 0 and CHROMIUM.exists():
            return str(CHROMIUM)
    pytest.skip(f"could not install chromium: {result.stderr.strip()[-300:]}")
    return ""  # unreachable; pytest.skip raises
