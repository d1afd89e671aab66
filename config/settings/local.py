"""Developer machine (`make dev`): DEBUG on, email printed to the console.

When `make dev` runs, it writes the addresses of the services it started to .local/dev.env;
reading them here lets `manage.py <command>` in another terminal reach the same database
and Temporal without exporting anything. Variables set in the environment win.
"""

import os

from core.env import DEV_ENV_FILE, read_env_file

for _key, _value in read_env_file(DEV_ENV_FILE).items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# A small warm pool of tenant schemas, so a signup on a dev machine is active at once.
os.environ.setdefault("TENANT_SCHEMA_POOL_SIZE", "2")

from .base import *  # noqa: E402

# `make dev` serves with gunicorn, which does not serve static files as runserver does:
# WhiteNoise serves them straight from the apps (no collectstatic), re-read on change.
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
MIDDLEWARE = [
    *MIDDLEWARE[: _security + 1],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_security + 1 :],
]
WHITENOISE_USE_FINDERS = True
# `make dev` serves with several processes: throttles and every other cached count must be
# shared by them, or each would allow its own share. A table in PostgreSQL (`manage.py
# migrate` creates it), as production has when no REDIS_URL is set.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "django_cache",
    }
}
WHITENOISE_AUTOREFRESH = True
