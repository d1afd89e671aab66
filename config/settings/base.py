"""Settings shared by every environment. Values come from the environment (see README)."""

from pathlib import Path

from core.env import (
    database_connect_timeout_from_env,
    database_from_url,
    database_pool_from_env,
    env_address,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_nameservers,
    env_networks,
    env_pairs,
    env_rate,
    env_str,
    tenant_databases_from_env,
)
from core.logs import FORMATS as LOG_FORMATS
from core.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "django-insecure-dev-only-key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", ".localhost", "127.0.0.1"])

# Pooled in every environment (DATABASE_POOL_*): each process holds at most
# DATABASE_POOL_MAX_SIZE connections however many threads it runs. A new connection fails
# after DATABASE_CONNECT_TIMEOUT seconds; a request's queries after DATABASE_REQUEST_TIMEOUT
# (core.db.deadline, applied by core.errors.DatabaseDeadlineMiddleware).
DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", "postgres://postgres@localhost:5432/tenantflow"),
        pool=database_pool_from_env(),
        connect_timeout=database_connect_timeout_from_env(),
    )
}
# Databases that hold tenant schemas besides `default`, which keeps the shared data (users,
# tenants, domains, the outbox) and tenant schemas too: TENANT_DATABASE_URLS="alias=url …".
for _alias, _url in env_pairs("TENANT_DATABASE_URLS").items():
    DATABASES[_alias] = database_from_url(
        _url,
        name=f"TENANT_DATABASE_URLS[{_alias}]",
        pool=database_pool_from_env(),
        connect_timeout=database_connect_timeout_from_env(),
    )
# Where new tenants go (tenants/databases.py): the open database with the fewest tenants
# for its WEIGHT. TENANT_DATABASE_WEIGHTS="alias=2 …" (default 1 each);
# TENANT_DATABASES_CLOSED="alias …" takes no new tenants (its tenants stay and are served).
TENANT_DATABASES = tenant_databases_from_env(list(DATABASES))
DATABASE_REQUEST_TIMEOUT = env_float("DATABASE_REQUEST_TIMEOUT", 5.0, minimum=0)
DATABASE_ROUTERS = ["tenants.databases.TenantDatabaseRouter"]
TENANT_SYNC_ROUTER = DATABASE_ROUTERS[0]  # django-tenants' checks look for this one
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- django-tenants ----------------------------------------------------------------------
# Apps in the public schema: users, tenants and the orchestration outbox live here.
SHARED_APPS = [
    # `tenants` first: its migrate/migrate_schemas commands replace django-tenants' ones.
    "tenants",
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "orchestration",
    "axes",
]
# Apps whose tables exist once per tenant schema.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "tenants.workspace",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

# Set search_path once per connection use, not before every cursor (django-tenants' default
# doubled the statements of a signup); set_schema()/schema_context() reset it, and the
# routing middleware sets the schema on every request.
TENANT_LIMIT_SET_CALLS = True
TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# Hosts under this domain are tenants: <subdomain>.<TENANT_BASE_DOMAIN>. The domain itself
# (and any host in PUBLIC_HOSTS) is the public site: signup, admin, /healthz.
TENANT_BASE_DOMAIN = env_str("TENANT_BASE_DOMAIN", "localhost").strip().lower()
PUBLIC_HOSTS = [TENANT_BASE_DOMAIN, *env_list("PUBLIC_HOSTS", ["127.0.0.1"])]
# Kept at the current migrations and copied to make new tenant schemas
# (tenants/schemas/snapshot.py).
TENANT_TEMPLATE_SCHEMA = env_str("TENANT_TEMPLATE_SCHEMA", "tenant_template")
# pg_dump used to snapshot the template; default: the embedded PostgreSQL's, else PATH.
PG_DUMP_PATH = env_str("PG_DUMP_PATH", "") or None
# Database connections a tenant schema is built on at once from the template (tenants/
# schemas.py, build_from_template): a large app's schema is built in parallel, borrowing
# connections from the pool only if they are free at once; 1 replays it on one connection.
TENANT_SCHEMA_BUILD_CONNECTIONS = env_int("TENANT_SCHEMA_BUILD_CONNECTIONS", 2, minimum=1)
# Pre-built schemas at the current migrations that provisioning claims by renaming one
# (tenants/pool.py); 0 (the default here) keeps no pool. A workflow on the jobs queue keeps
# it full, kicked after each claim and every TENANT_SCHEMA_POOL_REFILL_INTERVAL seconds.
TENANT_SCHEMA_POOL_SIZE = env_int("TENANT_SCHEMA_POOL_SIZE", 0, minimum=0)
TENANT_SCHEMA_POOL_REFILL_INTERVAL = env_int("TENANT_SCHEMA_POOL_REFILL_INTERVAL", 600, minimum=10)
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenants"

MIDDLEWARE = [
    # First: every line a request logs, by any middleware or view, carries its request_id.
    "core.logs.RequestIdMiddleware",
    # Outside everything that may fail: errors answered as JSON (outside the admin), and
    # every query of the request bounded by DATABASE_REQUEST_TIMEOUT.
    "core.errors.ErrorsMiddleware",
    "core.errors.DatabaseDeadlineMiddleware",
    "core.metrics.RequestMetricsMiddleware",
    "tenants.middleware.TenantRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

# --- Login lockout (django-axes; see core/lockout.py) --------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out; first
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = LOGIN_COOLOFF_MINUTES / 60  # hours
# The account and the address together: failures lock that account from that address only,
# so nobody can lock an account out for its owner by failing from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "core.lockout.login_username"
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
# The client address behind NUM_PROXIES proxies, exactly as the API's throttling reads it.
AXES_CLIENT_IP_CALLABLE = "core.lockout.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Where the default storage (the filesystem) keeps files: tenant data exports.
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / ".local" / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per client IP; counted in the "default" cache, which production shares between
    # processes (Redis or the database): see CACHES.
    "DEFAULT_THROTTLE_RATES": {
        "signup": env_rate("THROTTLE_SIGNUP", "20/hour"),
        "login": env_rate("THROTTLE_LOGIN", "30/minute"),
        "verify": env_rate("THROTTLE_VERIFY", "30/minute"),
        # Asking for the verification email again: each answer may send an email.
        "resend": env_rate("THROTTLE_RESEND", "5/hour"),
        # Asking for a password reset email: each answer may send an email.
        "password_reset": env_rate("THROTTLE_PASSWORD_RESET", "5/hour"),
        # Per user: requests that check the user's own password (email change, closing the
        # account); failed checks also count towards the login lockout.
        "password_check": env_rate("THROTTLE_PASSWORD_CHECK", "10/hour"),
        # Per user, on the tenant status endpoint (a client polls it while provisioning).
        "tenant": env_rate("THROTTLE_TENANT", "120/minute"),
        # Per user, on creating another organisation.
        "organization": env_rate("THROTTLE_ORGANIZATION", "10/hour"),
    },
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tenantflow API",
    "DESCRIPTION": "Signup, tenant status and deletion, members and roles, invitations, "
    "domains, data exports, email verification, logout and API tokens, password reset, "
    "email change, closing an account.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Several serializers have a field named "status" with different choices: name each
    # set after its model's choices, not after a hash of them.
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.TenantStatus",
        "ExportStatusEnum": "tenants.models.ExportStatus",
        "SuspensionReasonEnum": "tenants.models.SuspensionReason",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.retry_after_headers",
    ],
}
# One process: memory is enough. Production shares the cache between processes.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Temporal -----------------------------------------------------------------------------
# Validated in OrchestrationConfig.ready(); see orchestration/conf.py.
TEMPORAL_ADDRESS = env_str("TEMPORAL_ADDRESS", "localhost:7233")
TEMPORAL_NAMESPACE = env_str("TEMPORAL_NAMESPACE", "default")
TEMPORAL_QUEUE_PREFIX = env_str("TEMPORAL_QUEUE_PREFIX", "tenantflow")
TEMPORAL_QUEUE_SHARDS = env_int("TEMPORAL_QUEUE_SHARDS", 4, minimum=1)
TEMPORAL_API_KEY = env_str("TEMPORAL_API_KEY", "") or None
# TLS is on when TEMPORAL_TLS is true, or implicitly when an API key is set (Temporal Cloud).
TEMPORAL_TLS = env_bool("TEMPORAL_TLS", TEMPORAL_API_KEY is not None)
TEMPORAL_TLS_CA_FILE = env_str("TEMPORAL_TLS_CA_FILE", "") or None
TEMPORAL_TLS_CERT_FILE = env_str("TEMPORAL_TLS_CERT_FILE", "") or None
TEMPORAL_TLS_KEY_FILE = env_str("TEMPORAL_TLS_KEY_FILE", "") or None
TEMPORAL_TLS_SERVER_NAME = env_str("TEMPORAL_TLS_SERVER_NAME", "") or None
TEMPORAL_UI_URL = env_str("TEMPORAL_UI_URL", "http://localhost:8233").rstrip("/")
# Dotted path to a temporalio DataConverter (or a callable returning one), e.g. one with a
# payload codec that encrypts workflow arguments; empty: the SDK's default JSON converter.
TEMPORAL_DATA_CONVERTER = env_str("TEMPORAL_DATA_CONVERTER", "")
# Modules whose REGISTRY adds workflows/activities to this project's workers.
TEMPORAL_WORKER_EXTENSIONS = env_list("TEMPORAL_WORKER_EXTENSIONS", [])
# Worker Versioning (docs/versioning.md "Worker Versioning"). Off here, for `make dev` and
# the tests (docs/operations.md "Deploying a new worker build" says why); production turns
# it on. The workers then run as one worker deployment, one version per build id; empty
# TEMPORAL_BUILD_ID: a hash of the workflow and activity sources, computed once when a
# worker starts.
TEMPORAL_WORKER_VERSIONING = env_bool("TEMPORAL_WORKER_VERSIONING", False)
TEMPORAL_DEPLOYMENT_NAME = env_str("TEMPORAL_DEPLOYMENT_NAME", "tenantflow")
TEMPORAL_BUILD_ID = env_str("TEMPORAL_BUILD_ID", "")
# The outbox relay: started rows are deleted after this many days.
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 7, minimum=1)
OUTBOX_POLL_INTERVAL = env_int("OUTBOX_POLL_INTERVAL", 2, minimum=1)
# Open runs one relay keeps per tenant (fairness key) with a backlog; the tenant's further
# rows wait in the outbox, so that one tenant's thousands cannot fill the workers (a burst
# of up to 4x this starts whole; 0: no cap). See orchestration/relay/admission.py.
OUTBOX_RUNS_PER_TENANT = env_int("OUTBOX_RUNS_PER_TENANT", 4, minimum=0)
# Seconds /healthz waits for Temporal before reporting it down.
TEMPORAL_HEALTH_TIMEOUT = env_int("TEMPORAL_HEALTH_TIMEOUT", 3, minimum=1)

# --- The admin's operations page (docs/operations.md "The operations page") ---------------
# A tenant provisioning or deleting with no progress for this long (seconds) is listed
# as stuck.
OPERATIONS_STUCK_AFTER = env_int("OPERATIONS_STUCK_AFTER", 15 * 60, minimum=1)
# How long the page waits for its one Temporal query (failed onboarding runs) before it
# says Temporal is unavailable and shows the rest, which comes from the database.
OPERATIONS_TEMPORAL_TIMEOUT = env_float("OPERATIONS_TEMPORAL_TIMEOUT", 3.0, minimum=0.1)
# --- django.tasks (docs/tasks.md) ---------------------------------------------------------
# Every task runs on Temporal, started through the outbox after commit (orchestration/tasks.py).
TASKS = {
    "default": {
        "BACKEND": "orchestration.tasks.TemporalTaskBackend",
        # default: the tenant's queue when a tenant is active, else jobs; or either, forced.
        "QUEUES": ["default", "tenant", "jobs"],
        "OPTIONS": {
            # The activity's retry policy and timeout (seconds) for every task; per task
            # under "TASKS": {"module.task": {...}}.
            "RETRY": {
                "max_attempts": 3,
                "initial_interval": 1,
                "maximum_interval": 60,
                "timeout": 300,
            },
            # A suspended tenant's tasks wait for its reactivation, but its owner may
            # still export its data.
            "TASKS": {"tenants.exports.export_tenant_data": {"while_suspended": True}},
        },
    }
}
# Tenant data exports (tenants/exports.py): how long a download link stays valid.
TENANT_EXPORT_LINK_TTL = env_int("TENANT_EXPORT_LINK_TTL", 3600, minimum=60)
# Exports of one tenant pending or running at once; a request past it answers 429.
TENANT_EXPORTS_IN_FLIGHT = env_int("TENANT_EXPORTS_IN_FLIGHT", 2, minimum=1)
# Seconds a finished export (ready or failed) is kept, file and row, before the hourly
# prune (TenantExportsPruneWorkflow, on a Temporal Schedule) deletes it.
TENANT_EXPORT_RETENTION = env_int("TENANT_EXPORT_RETENTION", 7 * 24 * 3600, minimum=60)
# Deleting a live tenant schedules its purge this many seconds later (its host stops at
# once, its schema and data are kept, its owner can restore it until then); 0: deleted at
# once (tenants/services/deletion.py, TenantDeletionGraceWorkflow).
TENANT_DELETION_GRACE = env_int("TENANT_DELETION_GRACE", 30 * 24 * 3600, minimum=0)
# The owner is reminded this many seconds before the purge (no reminder when the grace
# period is not longer than this).
TENANT_DELETION_REMINDER_BEFORE = env_int(
    "TENANT_DELETION_REMINDER_BEFORE", 3 * 24 * 3600, minimum=1
)

# --- Moves between tenant databases (tenants/services/moves.py) ----------------------------
# Seconds a moved tenant's old schema is kept (not served, not migrated) before it is
# dropped: time to look at both before the old one goes. 0: dropped at once.
TENANT_MOVE_DROP_AFTER = env_int("TENANT_MOVE_DROP_AFTER", 24 * 3600, minimum=0)

# --- Domains (tenants/services/domains.py, docs/operations.md "Domains") -------------------
# Seconds a subdomain a tenant changed away from keeps redirecting (308) to the new one and
# stays held (no other tenant can take it); then it is freed.
TENANT_OLD_DOMAIN_TTL = env_int("TENANT_OLD_DOMAIN_TTL", 30 * 24 * 3600, minimum=1)
# Nameservers custom domains' TXT records are looked up at: "ip" or "ip:port", comma-
# separated; empty: the system's resolver.
CUSTOM_DOMAIN_NAMESERVERS = env_nameservers("CUSTOM_DOMAIN_NAMESERVERS")
# A new custom domain is looked up after this many seconds, then at doubling intervals (at
# most an hour apart) until it is verified or CUSTOM_DOMAIN_VERIFY_TIMEOUT seconds have
# passed (it is then expired).
CUSTOM_DOMAIN_VERIFY_INTERVAL = env_int("CUSTOM_DOMAIN_VERIFY_INTERVAL", 30, minimum=1)
CUSTOM_DOMAIN_VERIFY_TIMEOUT = env_int("CUSTOM_DOMAIN_VERIFY_TIMEOUT", 3 * 24 * 3600, minimum=1)
# Verified custom domains are looked up again every this many seconds (a Temporal
# Schedule); one whose record is gone is failing (its owner is warned, it still serves) and
# stops serving once it has failed for CUSTOM_DOMAIN_GRACE seconds.
# Custom domains one tenant may have at once (any status); 0: none (custom domains off).
CUSTOM_DOMAINS_PER_TENANT = env_int("CUSTOM_DOMAINS_PER_TENANT", 20, minimum=0)
CUSTOM_DOMAIN_RECHECK_INTERVAL = env_int("CUSTOM_DOMAIN_RECHECK_INTERVAL", 3600, minimum=1)
CUSTOM_DOMAIN_GRACE = env_int("CUSTOM_DOMAIN_GRACE", 3 * 24 * 3600, minimum=0)

# --- Metrics (docs/operations.md "Metrics") --------------------------------------------------
# The worker serves Prometheus metrics (the Temporal SDK's and ours) here; empty: off.
WORKER_METRICS_ADDRESS = env_address("WORKER_METRICS_ADDRESS")
# Addresses (or networks) the web server's /metrics answers; others get a 404.
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])

# --- Durable steps (seconds) ------------------------------------------------------------
# How long a provisioning or deletion step, or an email, keeps retrying through an outage
# (database, SMTP, a failover) before the run gives up on it: capped exponential back-off,
# one attempt a minute at most. Errors no retry can fix fail at once.
STEP_RETRY_WINDOW = env_int("STEP_RETRY_WINDOW", 24 * 3600, minimum=60)

# --- Fleet migration (tenants/fleet.py, orchestration/workflows/fleet_migration.py) ---------
# `migrate` migrates the shared schema and the template, then starts one fleet run per set of
# migrations: every tenant schema that is behind is migrated by the workers, this many at once.
FLEET_MIGRATION_CONCURRENCY = env_int("FLEET_MIGRATION_CONCURRENCY", 8, minimum=1)
# Tenants read (and checked for being current) per batch; a run continues as new after
# this many tenants, so its history stays small for any fleet.
FLEET_MIGRATION_BATCH_SIZE = env_int("FLEET_MIGRATION_BATCH_SIZE", 200, minimum=1)
FLEET_MIGRATION_CONTINUE_AFTER = env_int("FLEET_MIGRATION_CONTINUE_AFTER", 2000, minimum=1)
# Seconds a chunk of migrations may wait in all, before its schemas, while a tenant is being
# provisioned (signups first; tenants/fleet.py). 0: never wait.
FLEET_MIGRATION_GIVE_WAY = env_float("FLEET_MIGRATION_GIVE_WAY", 2.0, minimum=0)

# Tenants one account may own that are not deleted (POST /api/v1/tenants/ refuses more).
TENANTS_PER_OWNER = env_int("TENANTS_PER_OWNER", 20, minimum=1)

# --- Onboarding (seconds) ----------------------------------------------------------------
# A reminder goes out this long after signup if the email is still unverified…
ONBOARDING_REMIND_AFTER = env_int("ONBOARDING_REMIND_AFTER", 24 * 3600, minimum=1)
# …and the verification token expires (onboarding gives up) this long after signup.
ONBOARDING_EXPIRE_AFTER = env_int("ONBOARDING_EXPIRE_AFTER", 7 * 24 * 3600, minimum=2)
# An owner still unverified then has their organisations suspended (reason "unverified")
# this long after signup, and their deletion scheduled this long after signup; 0: never.
ONBOARDING_SUSPEND_AFTER = env_int("ONBOARDING_SUSPEND_AFTER", 30 * 24 * 3600, minimum=0)
ONBOARDING_DELETE_AFTER = env_int("ONBOARDING_DELETE_AFTER", 60 * 24 * 3600, minimum=0)
# --- Invitations (seconds; tenants/services/people.py, TenantInvitationWorkflow) -----------
# An invitation not accepted is reminded once this long after it was made…
INVITATION_REMIND_AFTER = env_int("INVITATION_REMIND_AFTER", 3 * 24 * 3600, minimum=1)
# …and expires (its link stops working, the workflow closes it) this long after it was made.
INVITATION_TTL = env_int("INVITATION_TTL", 7 * 24 * 3600, minimum=2)
# Used and expired tokens are deleted this long after they stopped being usable.
TOKEN_RETENTION_DAYS = env_int("TOKEN_RETENTION_DAYS", 30, minimum=0)
TOKEN_CLEANUP_INTERVAL = env_int("TOKEN_CLEANUP_INTERVAL", 3600, minimum=60)
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 90, minimum=1)
# Seconds an emailed password reset token stays usable (once), and an email change's
# confirmation token.
PASSWORD_RESET_TTL = env_int("PASSWORD_RESET_TTL", 3600, minimum=60)
EMAIL_CHANGE_TTL = env_int("EMAIL_CHANGE_TTL", 24 * 3600, minimum=60)
# Emails per recipient (accounts/services.py, email_quota_use), whoever asks for them (any
# client address, staff in the admin): at most one of a kind (verification…) to an address
# every EMAIL_RECIPIENT_COOLDOWN seconds (0: no cool-down), and EMAIL_RECIPIENT_DAILY_LIMIT
# in any 24 hours. Counted in the database, which every web process shares.
EMAIL_RECIPIENT_COOLDOWN = env_int("EMAIL_RECIPIENT_COOLDOWN", 60, minimum=0)
EMAIL_RECIPIENT_DAILY_LIMIT = env_int("EMAIL_RECIPIENT_DAILY_LIMIT", 5, minimum=1)
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")

# --- Email (Django 6.1 MAILERS) ----------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
MAILERS = {
    "default": {
        "BACKEND": EMAIL_BACKEND,
        "OPTIONS": {
            "host": env_str("EMAIL_HOST", "localhost"),
            "port": env_int("EMAIL_PORT", 25, minimum=1),
            "username": env_str("EMAIL_HOST_USER", ""),
            "password": env_str("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", False),
        }
        if EMAIL_BACKEND.endswith("smtp.EmailBackend")
        else {},
    }
}
del EMAIL_BACKEND  # configured through MAILERS only (the EMAIL_* settings are deprecated)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@localhost")

# Logs (core/logs.py): readable lines by default, one JSON object per line in production.
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOG_FORMAT = env_choice("LOG_FORMAT", "text", LOG_FORMATS, upper=False)
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT)
