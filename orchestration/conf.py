"""Validation of the Temporal settings, run once at start-up from ``AppConfig.ready()``."""

import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_ADDRESS_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}\Z")
# Queue names are derived from the prefix; keep it to characters that read well in the UI.
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}\Z")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
# A version is named "<deployment>.<build id>": the deployment name cannot hold a dot.
_DEPLOYMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}\Z")
_BUILD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}\Z")


def validate_settings() -> None:
    address = settings.TEMPORAL_ADDRESS
    if not _ADDRESS_RE.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ImproperlyConfigured(
            f"TEMPORAL_ADDRESS={address!r} must be host:port, e.g. localhost:7233."
        )
    if not _NAMESPACE_RE.match(settings.TEMPORAL_NAMESPACE):
        raise ImproperlyConfigured(
            f"TEMPORAL_NAMESPACE={settings.TEMPORAL_NAMESPACE!r} is not a valid namespace name."
        )
    if not _PREFIX_RE.match(settings.TEMPORAL_QUEUE_PREFIX):
        raise ImproperlyConfigured(
            f"TEMPORAL_QUEUE_PREFIX={settings.TEMPORAL_QUEUE_PREFIX!r} must be 1-48 lower-case "
            "letters, digits, '.', '_' or '-'."
        )
    shards = settings.TEMPORAL_QUEUE_SHARDS
    if not isinstance(shards, int) or not 1 <= shards <= 1024:
        raise ImproperlyConfigured(f"TEMPORAL_QUEUE_SHARDS={shards!r} must be from 1 to 1024.")
    for name in ("TEMPORAL_TLS_CA_FILE", "TEMPORAL_TLS_CERT_FILE", "TEMPORAL_TLS_KEY_FILE"):
        path = getattr(settings, name)
        if path and not Path(path).is_file():
            raise ImproperlyConfigured(f"{name}={path!r} is not a readable file.")
    if bool(settings.TEMPORAL_TLS_CERT_FILE) != bool(settings.TEMPORAL_TLS_KEY_FILE):
        raise ImproperlyConfigured(
            "TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together (mutual TLS)."
        )
    if settings.ONBOARDING_REMIND_AFTER >= settings.ONBOARDING_EXPIRE_AFTER:
        raise ImproperlyConfigured(
            f"ONBOARDING_REMIND_AFTER={settings.ONBOARDING_REMIND_AFTER} must be less than "
            f"ONBOARDING_EXPIRE_AFTER={settings.ONBOARDING_EXPIRE_AFTER} (seconds)."
        )
    later = ("ONBOARDING_EXPIRE_AFTER", settings.ONBOARDING_EXPIRE_AFTER)
    for name in ("ONBOARDING_SUSPEND_AFTER", "ONBOARDING_DELETE_AFTER"):
        value = getattr(settings, name)
        if 0 < value <= later[1]:
            raise ImproperlyConfigured(
                f"{name}={value} must be 0 (never) or more than {later[0]}={later[1]} (seconds)."
            )
        later = (name, value) if value else later
    if settings.INVITATION_REMIND_AFTER >= settings.INVITATION_TTL:
        raise ImproperlyConfigured(
            f"INVITATION_REMIND_AFTER={settings.INVITATION_REMIND_AFTER} must be less than "
            f"INVITATION_TTL={settings.INVITATION_TTL} (seconds)."
        )
    if not _DEPLOYMENT_RE.match(settings.TEMPORAL_DEPLOYMENT_NAME):
        raise ImproperlyConfigured(
            f"TEMPORAL_DEPLOYMENT_NAME={settings.TEMPORAL_DEPLOYMENT_NAME!r} must be letters, "
            "digits, '_' or '-' (no dot: a version is named <deployment>.<build id>)."
        )
    if settings.TEMPORAL_BUILD_ID and not _BUILD_ID_RE.match(settings.TEMPORAL_BUILD_ID):
        raise ImproperlyConfigured(
            f"TEMPORAL_BUILD_ID={settings.TEMPORAL_BUILD_ID!r} must be letters, digits, '.', "
            "'_', '+' or '-' (e.g. a git commit or a release tag), or empty for a hash of "
            "the workflow and activity sources."
        )
    from orchestration.client import data_converter

    data_converter()  # raises ImproperlyConfigured naming TEMPORAL_DATA_CONVERTER
    if not settings.TEMPORAL_UI_URL.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"TEMPORAL_UI_URL={settings.TEMPORAL_UI_URL!r} must start with http:// or https://."
        )
