"""The import contracts in pyproject.toml hold, and they do catch a violation."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.localservices import PROJECT_DIR

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ["accounts", "tenants", "orchestration", "config", "core", "devstack"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, check=False
    )


@pytest.fixture
def copy_of_project(tmp_path) -> Path:
    for package in PACKAGES:
        shutil.copytree(PROJECT_DIR / package, tmp_path / package)
    shutil.copy(PROJECT_DIR / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts_hold():
    result = lint_imports(PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "chain"),
    [
        (
            "tenants/selectors.py",
            "from orchestration import routing",
            "Layers",
            "tenants.selectors -> orchestration.routing",
        ),
        (
            "accounts/services/__init__.py",
            "from tenants import models",
            "Layers",
            "accounts.services -> tenants.models",
        ),
        (
            "orchestration/client.py",
            "from config import views",
            "Layers",
            "orchestration.client -> config.views",
        ),
        ("core/db.py", "from accounts import models", "Layers", "core.db -> accounts.models"),
        (
            "core/env.py",
            "from devstack import localservices",
            "Dev tooling",
            "core.env -> devstack.localservices",
        ),
        (
            "config/settings/local.py",
            "from devstack import localservices",
            "Dev tooling",
            "config.settings.local -> devstack.localservices",
        ),
        (
            "tenants/services/__init__.py",
            "import devstack.supervisor",
            "Dev tooling",
            "tenants.services -> devstack.supervisor",
        ),
        (
            "accounts/signals.py",
            "from accounts import services",
            "No cycles",
            "No cycles are allowed in accounts.",
        ),
        (
            "devstack/localservices.py",
            "from devstack import supervisor",
            "No cycles",
            "No cycles are allowed in devstack.",
        ),
        (
            "accounts/selectors.py",
            "from accounts import services",
            "Selectors",
            "accounts.selectors -> accounts.services",
        ),
        (
            "orchestration/workflows/token_cleanup.py",
            "from django.db import connection",
            "Workflow modules",
            "orchestration.workflows.token_cleanup -> django",
        ),
    ],
)
def test_a_violating_import_breaks_its_contract(copy_of_project, module, line, contract, chain):
    path = copy_of_project / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(copy_of_project)
    assert result.returncode != 0
    assert "1 broken" in result.stdout, result.stdout
    broken = [row for row in result.stdout.splitlines() if row.startswith(contract)]
    assert broken, result.stdout
    assert chain in result.stdout
