"""A throwaway tenant app of many tables, for measuring provisioning with a large schema.

``generate(directory, tables=52)`` writes the package ``bench_wide`` (models and their
initial migration, made by ``makemigrations``) under ``directory``; ``bench/settings.py``
adds it to the tenant apps when ``BENCH_TENANT_APP_DIR`` names that directory. Each model
has a handful of columns, two indexes and a foreign key to the previous one, so the schema
has tables, indexes, sequences and constraints in the proportions of a real app.
"""

import os
import subprocess
import sys
from pathlib import Path

APP = "bench_wide"
ROOT = Path(__file__).resolve().parent.parent

_MODEL = """

class Table{n:02d}(models.Model):
    name = models.CharField(max_length=200, db_index=True)
    code = models.CharField(max_length=32, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    active = models.BooleanField(default=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
{link}
    class Meta:
        indexes = [models.Index(fields=["active", "created_at"])]
"""


def generate(directory: Path, *, database_url: str, tables: int = 52) -> Path:
    """Write the app and its migration (``makemigrations`` checks the history against the
    database at ``database_url``); returns the package's directory."""
    package = directory / APP
    (package / "migrations").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "__init__.py").write_text("")
    models = ["from django.db import models"]
    for n in range(1, tables + 1):
        link = (
            ""
            if n == 1
            else (
                f"    previous = models.ForeignKey(Table{n - 1:02d}, on_delete=models.CASCADE, "
                "null=True)\n"
            )
        )
        models.append(_MODEL.format(n=n, link=link))
    (package / "models.py").write_text("\n".join(models))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
        "BENCH_TENANT_APP_DIR": str(directory),
        "DATABASE_URL": database_url,
    }
    subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(ROOT / "manage.py"), "makemigrations", APP, "-v0"],
        env=env,
        check=True,
        cwd=ROOT,
    )
    return package
