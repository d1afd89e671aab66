"""Developer machine (`make dev`): DEBUG on, email printed to the console.

When `make dev` runs, it writes the addresses of the services it started to .local/dev.env;
reading them here lets `manage.py <command>` in another terminal reach the same database
and Temporal without exporting anything. Variables set in the environment win.
"""

import os

from config.localservices import DEV_ENV_FILE, read_env_file

for _key, _value in read_env_file(DEV_ENV_FILE).items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

from .base import *  # noqa: E402
