"""Test runs (pytest-django).

The database and the Temporal dev server are started by session fixtures in
tests/conftest.py unless DATABASE_URL / TEMPORAL_ADDRESS are set.
"""

import copy
import os

from .base import *

# Two tenant databases: `tenants2`, a database of its own on the test server (created with
# the test database, tests/conftest.py), besides `default`. New tenants go to `default`
# unless a test opens `tenants2` (TENANT_DATABASES_CLOSED="" in a worker's environment).
if "tenants2" not in DATABASES:
    DATABASES["tenants2"] = {
        **copy.deepcopy(DATABASES["default"]),
        "NAME": f"{DATABASES['default']['NAME']}_tenants2",
    }
TENANT_DATABASES = tenant_databases_from_env(list(DATABASES))
if "TENANT_DATABASES_CLOSED" not in os.environ:
    TENANT_DATABASES["tenants2"]["OPEN"] = False

DEBUG = False
SECRET_KEY = "test-only-secret-key"  # noqa: S105
ALLOWED_HOSTS = ["*"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Test-only workflows hosted by the project's workers (see tests/orchestration/).
TEMPORAL_WORKER_EXTENSIONS = ["tests.orchestration.worker_extension"]
# Low limits, so the throttling tests reach them; tests clear the cache between tests. A
# scope not named here keeps its base rate.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "signup": "8/minute",
        "login": "5/minute",
        "verify": "5/minute",
        "resend": "3/minute",
        "password_reset": "3/minute",
        "password_check": "5/minute",
        "tenant": "20/minute",
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Login lockout above the API throttle, so each is tested on its own (tests lower it).
AXES_FAILURE_LIMIT = 10
# /readyz's wait for Temporal: a busy test machine can take more than the default 3 s.
TEMPORAL_HEALTH_TIMEOUT = 15
