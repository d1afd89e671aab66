"""The one place that builds a Temporal client from settings."""

import asyncio
import threading
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from core import tracing


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def tls_config() -> TLSConfig | bool:
    if not settings.TEMPORAL_TLS:
        return False
    return TLSConfig(
        server_root_ca_cert=_read(settings.TEMPORAL_TLS_CA_FILE),
        domain=settings.TEMPORAL_TLS_SERVER_NAME,
        client_cert=_read(settings.TEMPORAL_TLS_CERT_FILE),
        client_private_key=_read(settings.TEMPORAL_TLS_KEY_FILE),
    )


def data_converter() -> DataConverter:
    """``TEMPORAL_DATA_CONVERTER``: a dotted path to a ``DataConverter`` or to a callable
    returning one (a codec that encrypts payloads, say); the SDK's default when empty.
    Raises ``ImproperlyConfigured`` naming the setting when it cannot be used."""
    path = settings.TEMPORAL_DATA_CONVERTER
    if not path:
        return DataConverter.default
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"TEMPORAL_DATA_CONVERTER={path!r}: {exc}") from exc
    converter = found if isinstance(found, DataConverter) else found() if callable(found) else None
    if not isinstance(converter, DataConverter):
        raise ImproperlyConfigured(
            f"TEMPORAL_DATA_CONVERTER={path!r} is neither a temporalio DataConverter nor a "
            "callable that returns one."
        )
    return converter


async def connect(
    *, address: str | None = None, namespace: str | None = None, runtime: Runtime | None = None
) -> Client:
    """A client for this deployment's Temporal (address, namespace, TLS, API key, data
    converter). ``runtime``: the SDK runtime whose telemetry the client reports to (the
    worker's, when it serves metrics); the SDK's default otherwise. With tracing on it
    carries the tracing interceptor, and so do the workers made from it (the SDK hands a
    client's worker interceptors to its workers)."""
    return await Client.connect(
        address or settings.TEMPORAL_ADDRESS,
        namespace=namespace or settings.TEMPORAL_NAMESPACE,
        api_key=settings.TEMPORAL_API_KEY,
        tls=tls_config(),
        data_converter=data_converter(),
        runtime=runtime,
        interceptors=tracing.temporal_interceptors(),
    )


_shared: dict[tuple[str, str], Client] = {}
_shared_lock = threading.Lock()


async def shared() -> Client:
    """This process's one client for this deployment (made on first use, then reused from
    any thread or event loop; it reconnects by itself after an outage). A failed connect is
    not remembered: the next call tries again."""
    key = (settings.TEMPORAL_ADDRESS, settings.TEMPORAL_NAMESPACE)
    if (client := _shared.get(key)) is not None:
        return client
    client = await connect()
    with _shared_lock:
        return _shared.setdefault(key, client)


async def check_health(within: float | None = None) -> None:
    """Raise if Temporal's frontend cannot be reached or is not serving within ``within`` s."""
    timeout = within or settings.TEMPORAL_HEALTH_TIMEOUT
    async with asyncio.timeout(timeout):
        client = await shared()
        serving = await client.service_client.check_health(timeout=timedelta(seconds=timeout))
    if not serving:
        raise RuntimeError("Temporal frontend answered but is not serving.")
