"""Start-up configuration errors name the variable (each case in a fresh interpreter)."""

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import database_from_url
from devstack.localservices import PROJECT_DIR
from orchestration.conf import validate_settings

GOOD = {
    "SECRET_KEY": "s" * 50,
    "DATABASE_URL": "postgres://app:pw@db.internal:5432/app",
}


def start(settings_module: str, *, then: str = "", **env: str) -> subprocess.CompletedProcess:
    """Import the settings and run Django's set-up, as any process start does; then run
    the code ``then``."""
    inherited = {*GOOD, "DEBUG", "TEMPORAL_WORKER_VERSIONING"}
    clean = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {then}"],
        env={**clean, "DJANGO_SETTINGS_MODULE": settings_module, **env},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"THROTTLE_SIGNUP": "5/s", "THROTTLE_LOGIN": "1000/days", "THROTTLE_VERIFY": "10/min"},
        {"TENANT_BASE_DOMAIN": "example.com", "ALLOWED_HOSTS": "*"},
        {"TENANT_BASE_DOMAIN": "example.com", "ALLOWED_HOSTS": ".example.com"},
    ],
)
def test_production_starts_with_good_settings(extra):
    result = start("config.settings.production", **GOOD, **extra)
    assert result.returncode == 0, result.stderr


# (environment, what the error says): each a production start that must refuse.
BAD = [
    ({"DATABASE_URL": GOOD["DATABASE_URL"]}, "Set the SECRET_KEY environment variable"),
    ({**GOOD, "SECRET_KEY": "django-insecure-" + "x" * 40}, "SECRET_KEY is the development"),
    ({**GOOD, "SECRET_KEY": "short"}, "shorter than 32"),
    ({**GOOD, "DEBUG": "true"}, "DEBUG must be false in production"),
    ({**GOOD, "DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
    ({"SECRET_KEY": GOOD["SECRET_KEY"]}, "Set the DATABASE_URL environment variable"),
    ({**GOOD, "DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be a postgres:// URL"),
    ({**GOOD, "TEMPORAL_QUEUE_SHARDS": "many"}, "TEMPORAL_QUEUE_SHARDS='many' is not"),
    ({**GOOD, "TEMPORAL_QUEUE_SHARDS": "0"}, "TEMPORAL_QUEUE_SHARDS=0 must be at least 1"),
    ({**GOOD, "TEMPORAL_ADDRESS": "temporal"}, "TEMPORAL_ADDRESS='temporal' must be host:port"),
    ({**GOOD, "TEMPORAL_QUEUE_PREFIX": "Bad Prefix"}, "TEMPORAL_QUEUE_PREFIX="),
    ({**GOOD, "TEMPORAL_TLS_CA_FILE": "/nonexistent/ca.pem"}, "TEMPORAL_TLS_CA_FILE="),
    ({**GOOD, "TEMPORAL_UI_URL": "localhost:8233"}, "TEMPORAL_UI_URL="),
    ({**GOOD, "TEMPORAL_WORKER_VERSIONING": "maybe"}, "TEMPORAL_WORKER_VERSIONING='maybe'"),
    ({**GOOD, "TEMPORAL_DEPLOYMENT_NAME": "tenant.flow"}, "no dot"),
    ({**GOOD, "TEMPORAL_BUILD_ID": "v 1"}, "TEMPORAL_BUILD_ID='v 1'"),
    ({**GOOD, "THROTTLE_SIGNUP": "20/fortnight"}, "THROTTLE_SIGNUP='20/fortnight' is not"),
    ({**GOOD, "LOG_LEVEL": "verbose"}, "LOG_LEVEL='VERBOSE' must be one of"),
    ({**GOOD, "LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' must be one of json, text"),
    ({**GOOD, "WORKER_METRICS_ADDRESS": "9464"}, "WORKER_METRICS_ADDRESS='9464' must be"),
    ({**GOOD, "WORKER_METRICS_ADDRESS": "h:99999"}, "WORKER_METRICS_ADDRESS='h:99999' must"),
    ({**GOOD, "METRICS_ALLOWED_IPS": "127.0.0.1,local"}, "METRICS_ALLOWED_IPS: 'local' is"),
    ({**GOOD, "TENANT_BASE_DOMAIN": "example.com"}, "does not admit 'example.com'"),
    (
        {**GOOD, "TENANT_BASE_DOMAIN": "example.com", "ALLOWED_HOSTS": "example.com"},
        "does not admit 'tenant.example.com'",
    ),
    ({**GOOD, "TENANT_EXPORTS_IN_FLIGHT": "0"}, "TENANT_EXPORTS_IN_FLIGHT=0 must be at"),
    ({**GOOD, "TENANT_EXPORT_RETENTION": "a week"}, "TENANT_EXPORT_RETENTION='a week' is"),
    ({**GOOD, "TENANT_OLD_DOMAIN_TTL": "0"}, "TENANT_OLD_DOMAIN_TTL=0 must be at least 1"),
    ({**GOOD, "CUSTOM_DOMAIN_NAMESERVERS": "ns1.example"}, "CUSTOM_DOMAIN_NAMESERVERS: 'ns1"),
    ({**GOOD, "CUSTOM_DOMAIN_NAMESERVERS": "1.1.1.1:0"}, "CUSTOM_DOMAIN_NAMESERVERS: '1.1"),
    ({**GOOD, "CUSTOM_DOMAIN_VERIFY_INTERVAL": "0"}, "CUSTOM_DOMAIN_VERIFY_INTERVAL=0 must"),
    ({**GOOD, "CUSTOM_DOMAIN_VERIFY_TIMEOUT": "3d"}, "CUSTOM_DOMAIN_VERIFY_TIMEOUT='3d' is"),
    ({**GOOD, "CUSTOM_DOMAIN_RECHECK_INTERVAL": "0"}, "CUSTOM_DOMAIN_RECHECK_INTERVAL=0 mu"),
    ({**GOOD, "CUSTOM_DOMAINS_PER_TENANT": "-1"}, "CUSTOM_DOMAINS_PER_TENANT=-1 must be"),
    ({**GOOD, "CUSTOM_DOMAIN_GRACE": "-1"}, "CUSTOM_DOMAIN_GRACE=-1 must be at least 0"),
    ({**GOOD, "PASSWORD_RESET_TTL": "59"}, "PASSWORD_RESET_TTL=59 must be at least 60"),
    ({**GOOD, "EMAIL_CHANGE_TTL": "a day"}, "EMAIL_CHANGE_TTL='a day' is not an integer"),
    ({**GOOD, "THROTTLE_PASSWORD_RESET": "5/ever"}, "THROTTLE_PASSWORD_RESET='5/ever' is"),
    ({**GOOD, "TENANT_DELETION_GRACE": "a month"}, "TENANT_DELETION_GRACE='a month' is"),
    (
        {**GOOD, "TENANT_DELETION_REMINDER_BEFORE": "0"},
        "TENANT_DELETION_REMINDER_BEFORE=0 must be at least 1",
    ),
    ({**GOOD, "DATABASE_POOL_MAX_SIZE": "lots"}, "DATABASE_POOL_MAX_SIZE='lots' is not"),
    ({**GOOD, "DATABASE_POOL_MAX_SIZE": "0"}, "DATABASE_POOL_MAX_SIZE=0 must be at least 1"),
    ({**GOOD, "DATABASE_POOL_MIN_SIZE": "-1"}, "DATABASE_POOL_MIN_SIZE=-1 must be at least 0"),
    (
        {**GOOD, "DATABASE_POOL_MIN_SIZE": "5", "DATABASE_POOL_MAX_SIZE": "4"},
        "DATABASE_POOL_MAX_SIZE=4 must be at least DATABASE_POOL_MIN_SIZE=5",
    ),
    ({**GOOD, "DATABASE_POOL_TIMEOUT": "soon"}, "DATABASE_POOL_TIMEOUT='soon' is not a number"),
    ({**GOOD, "DATABASE_POOL_TIMEOUT": "0"}, "DATABASE_POOL_TIMEOUT='0' must be a number of"),
    ({**GOOD, "DATABASE_POOL_TIMEOUT": "nan"}, "DATABASE_POOL_TIMEOUT='nan' must be a number"),
    ({**GOOD, "OPERATIONS_STUCK_AFTER": "1h"}, "OPERATIONS_STUCK_AFTER='1h' is not an integer"),
    ({**GOOD, "OPERATIONS_STUCK_AFTER": "0"}, "OPERATIONS_STUCK_AFTER=0 must be at least 1"),
    (
        {**GOOD, "OPERATIONS_TEMPORAL_TIMEOUT": "0"},
        "OPERATIONS_TEMPORAL_TIMEOUT='0' must be a number of at least 0.1",
    ),
    (
        {**GOOD, "FLEET_MIGRATION_GIVE_WAY": "-1"},
        "FLEET_MIGRATION_GIVE_WAY='-1' must be a number of at least 0",
    ),
    (
        {**GOOD, "ONBOARDING_REMIND_AFTER": "99", "ONBOARDING_EXPIRE_AFTER": "60"},
        "ONBOARDING_REMIND_AFTER=99 must be less than",
    ),
    (
        {**GOOD, "ONBOARDING_SUSPEND_AFTER": "604800"},
        "ONBOARDING_SUSPEND_AFTER=604800 must be 0 (never) or more than ONBOARDING_EXPIRE",
    ),
    (
        {**GOOD, "ONBOARDING_SUSPEND_AFTER": "0", "ONBOARDING_DELETE_AFTER": "60"},
        "ONBOARDING_DELETE_AFTER=60 must be 0 (never) or more than ONBOARDING_EXPIRE_AFTER",
    ),
    (
        {**GOOD, "ONBOARDING_SUSPEND_AFTER": "9000000", "ONBOARDING_DELETE_AFTER": "8000000"},
        "ONBOARDING_DELETE_AFTER=8000000 must be 0 (never) or more than ONBOARDING_SUSPEND",
    ),
    ({**GOOD, "INVITATION_TTL": "1"}, "INVITATION_TTL=1 must be at least 2"),
    (
        {**GOOD, "INVITATION_REMIND_AFTER": "99", "INVITATION_TTL": "60"},
        "INVITATION_REMIND_AFTER=99 must be less than",
    ),
]


@pytest.fixture(scope="module")
def refused() -> list[subprocess.CompletedProcess]:
    """The start of every case in ``BAD``, four interpreters at a time: each case needs a
    fresh one, and one after another they cost a couple of seconds each."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda case: start("config.settings.production", **case[0]), BAD))


@pytest.mark.parametrize(
    "case", range(len(BAD)), ids=[message.split("=")[0][:40] for _, message in BAD]
)
def test_production_refuses_bad_settings_naming_the_variable(refused, case):
    result, message = refused[case], BAD[case][1]
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    "settings_module",
    ["config.settings.local", "config.settings.test", "config.settings.production"],
)
def test_every_environment_pools_its_connections(settings_module):
    show = (
        "from django.conf import settings; db = settings.DATABASES['default'];"
        "pool = db['OPTIONS']['pool']; check = pool.pop('check');"
        "print(pool, db['CONN_MAX_AGE'], check.__module__, db['OPTIONS']['connect_timeout'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {show}"],
        env={
            **os.environ,
            **GOOD,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DATABASE_POOL_MIN_SIZE": "1",
            "DATABASE_POOL_MAX_SIZE": "7",
            "DATABASE_POOL_TIMEOUT": "2.5",
            "DATABASE_CONNECT_TIMEOUT": "3",
        },
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == (
        "{'min_size': 1, 'max_size': 7, 'timeout': 2.5} 0 core.db 3"  # check: bounded by deadlines
    )


def test_database_url_forms():
    tcp = database_from_url("postgres://u:p%40ss@h:6543/db?sslmode=require")
    assert (tcp["USER"], tcp["PASSWORD"], tcp["HOST"], tcp["PORT"]) == ("u", "p@ss", "h", "6543")
    assert tcp["OPTIONS"] == {"sslmode": "require"}
    assert tcp["ENGINE"] == "django_tenants.postgresql_backend"
    sock = database_from_url("postgresql://postgres:@/app?host=/tmp/pg")
    assert (sock["HOST"], sock["NAME"], sock["OPTIONS"]) == ("/tmp/pg", "app", {})
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        database_from_url("postgres://u@h:5432/")


def test_data_converter_setting(settings):
    from temporalio.converter import DataConverter

    from orchestration.client import data_converter

    settings.TEMPORAL_DATA_CONVERTER = ""
    assert data_converter() is DataConverter.default
    settings.TEMPORAL_DATA_CONVERTER = "temporalio.converter.DataConverter"  # a callable
    assert isinstance(data_converter(), DataConverter)
    for bad in ("no.such.module.Converter", "os.sep"):
        settings.TEMPORAL_DATA_CONVERTER = bad
        with pytest.raises(ImproperlyConfigured, match="TEMPORAL_DATA_CONVERTER="):
            validate_settings()


def test_mutual_tls_files_go_together(settings, tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    settings.TEMPORAL_TLS_CERT_FILE = str(cert)
    settings.TEMPORAL_TLS_KEY_FILE = None
    with pytest.raises(ImproperlyConfigured, match="go together"):
        validate_settings()


SHOW_VERSIONING = (
    "from django.conf import settings; "
    "from orchestration.workflows._steps.versioning import VERSIONED; "
    "print(settings.TEMPORAL_WORKER_VERSIONING, VERSIONED)"
)


@pytest.mark.parametrize(
    ("settings_module", "value", "shown"),
    [
        ("config.settings.production", None, "True True"),
        ("config.settings.production", "false", "False False"),
        ("config.settings.local", None, "False False"),  # make dev
        ("config.settings.test", None, "False False"),
    ],
)
def test_production_workers_are_versioned_unless_told_otherwise(settings_module, value, shown):
    """The settings and the workflow definitions (which read the environment) agree either
    way; run_temporal_worker refuses to start when they do not."""
    env = {**GOOD} if value is None else {**GOOD, "TEMPORAL_WORKER_VERSIONING": value}
    result = start(settings_module, then=SHOW_VERSIONING, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == shown


SHOW_HTTPS = (
    "from django.conf import settings as s; "
    "print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
    "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
)


def test_the_proxy_ssl_header_is_believed_only_when_a_setting_says_so():
    by_default = start("config.settings.production", then=SHOW_HTTPS, **GOOD)
    assert by_default.stdout.splitlines()[-1] == "None False 0 False False"
    behind_a_proxy = start(
        "config.settings.production",
        then=SHOW_HTTPS,
        **GOOD,
        TRUST_PROXY_SSL_HEADER="true",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="300",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )
    assert behind_a_proxy.stdout.splitlines()[-1] == (
        "('HTTP_X_FORWARDED_PROTO', 'https') True 300 True True"
    )


def test_probes_and_prometheus_are_not_redirected_to_https(settings, client, db):
    """They reach the container over plain HTTP, not through the TLS proxy."""
    exempt = "from django.conf import settings as s; print(repr(s.SECURE_REDIRECT_EXEMPT))"
    production = start("config.settings.production", then=exempt, **GOOD)
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = ast.literal_eval(production.stdout.splitlines()[-1])
    assert client.get("/healthz", HTTP_HOST="localhost").status_code == 200
    assert client.get("/metrics", HTTP_HOST="localhost").status_code == 200
    assert client.get("/admin/login/", HTTP_HOST="localhost").status_code == 301
