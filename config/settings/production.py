"""Production: secrets must come from the environment; refuses unsafe values at start-up."""

import os

from django.core.exceptions import ImproperlyConfigured
from django.http.request import validate_host

from core.env import (
    database_connect_timeout_from_env,
    database_pool_from_env,
    env_bool,
    env_choice,
    env_int,
    env_str,
)

from .base import *

SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(
        "SECRET_KEY is the development default or shorter than 32 characters; "
        "set a long random SECRET_KEY for production."
    )
DEBUG = env_bool("DEBUG", False)
if DEBUG:
    raise ImproperlyConfigured(
        "DEBUG must be false in production (unset DEBUG or set it to false)."
    )
# One JSON object per line, for the log collector (LOG_FORMAT=text to read them by eye).
LOG_FORMAT = env_choice("LOG_FORMAT", "json", LOG_FORMATS, upper=False)
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT)
DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL"),
        pool=database_pool_from_env(),
        connect_timeout=database_connect_timeout_from_env(),
    )
}
# Every request goes to the base domain or a tenant's subdomain of it: ALLOWED_HOSTS must
# admit both, or the site would start and then answer 400 to everything.
for _host in (TENANT_BASE_DOMAIN, f"tenant.{TENANT_BASE_DOMAIN}"):
    if not validate_host(_host, ALLOWED_HOSTS):
        raise ImproperlyConfigured(
            f"ALLOWED_HOSTS={','.join(ALLOWED_HOSTS)!r} does not admit {_host!r}; add "
            f"{TENANT_BASE_DOMAIN} and .{TENANT_BASE_DOMAIN} (TENANT_BASE_DOMAIN)."
        )

# Hashed, compressed static files (collectstatic runs at image build), served by WhiteNoise
# under gunicorn, so the admin works without a proxy in front.
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
MIDDLEWARE = [
    *MIDDLEWARE[: _security + 1],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_security + 1 :],
]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Throttle counters must be shared by every web process: Redis when REDIS_URL is set,
# else a table in PostgreSQL (`manage.py migrate` creates it).
if redis_url := env_str("REDIS_URL", ""):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
        }
    }
# HTTPS (docs/operations.md "HTTPS, the proxy and check --deploy"). X-Forwarded-Proto is
# believed only when TRUST_PROXY_SSL_HEADER says a TLS proxy is the only way in and sets it
# (replacing a client's): with gunicorn reachable directly, any client could claim HTTPS.
if env_bool("TRUST_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Health checks and Prometheus reach the container over plain HTTP, not through the proxy.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
# Tenants are subdomains of the base domain, all served here: HSTS covers them too.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True

# Workers run as a Temporal worker deployment, one version per build (docs/operations.md
# "Deploying a new worker build"); TEMPORAL_WORKER_VERSIONING=false turns it off. The
# workflow definitions read the mode from the environment when they are imported
# (orchestration/workflows/_steps/versioning.py), so the default goes there too, before any
# of them is: the settings and the definitions then agree.
os.environ.setdefault("TEMPORAL_WORKER_VERSIONING", "true")
TEMPORAL_WORKER_VERSIONING = env_bool("TEMPORAL_WORKER_VERSIONING", True)
