"""Settings for the benchmarks: the local settings, a bench-only URL conf, no throttling."""
# ruff: noqa: F405 - the names come from the local settings, imported whole

import os

from config.settings.local import *  # noqa: F403

DEBUG = False
PUBLIC_SCHEMA_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_THROTTLE_RATES": {
        "signup": "1000000/minute",
        "login": "1000000/minute",
        "verify": "1000000/minute",
        "tenant": "1000000/minute",
        "resend": "1000000/minute",
        "password_reset": "1000000/minute",
        "password_check": "1000000/minute",
    },
}
if os.environ.get("BENCH_FAST_HASHER"):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# bench/fleet.py: django-tenants' multiprocessing executor with the fleet run's parallelism,
# and a workspace app with one more migration (an AddField) for its second case.
TENANT_MULTIPROCESSING_MAX_PROCESSES = int(os.environ.get("BENCH_TENANT_PROCESSES", "2"))
if os.environ.get("BENCH_WORKSPACE_MIGRATIONS"):
    MIGRATION_MODULES = {"workspace": os.environ["BENCH_WORKSPACE_MIGRATIONS"]}
# bench/wide_app.py: a generated tenant app of many tables, grafted onto the tenant apps.
if _wide := os.environ.get("BENCH_TENANT_APP_DIR"):
    import sys

    sys.path.insert(0, _wide)
    TENANT_APPS = [*TENANT_APPS, "bench_wide"]
    INSTALLED_APPS = [*INSTALLED_APPS, "bench_wide"]
# bench/tasks.py: the same tasks run as local activities (the backend's "local" option).
# Only there: bench/endtoend.py runs older code with these settings, whose backend refuses it.
if os.environ.get("BENCH_LOCAL_TASKS"):
    TASKS = {
        **TASKS,
        "local": {
            **TASKS["default"],
            "OPTIONS": {
                **TASKS["default"]["OPTIONS"],
                "RETRY": {
                    **TASKS["default"]["OPTIONS"]["RETRY"],
                    "local": True,
                },
            },
        },
    }
