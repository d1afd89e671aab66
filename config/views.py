"""The views the URL confs serve themselves: health and readiness probes, ``/metrics`` and a
tenant host's ``/``. Each reads across the apps (database, Temporal, the product's gauges,
memberships), so they live here, on the floor that may import every app.
"""

import asyncio
import ipaddress
import os

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from rest_framework.exceptions import AuthenticationFailed

from accounts.api.authentication import BearerTokenAuthentication
from orchestration.client import check_health as check_temporal
from orchestration.metrics import DatabaseGauges
from tenants.selectors import tenant_visible_to

_gauges = CollectorRegistry()
_gauges.register(DatabaseGauges())


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _probe(check) -> str | None:
    """None when ``check`` passes, otherwise the error as one line."""
    try:
        await check()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip().splitlines()[0] or type(exc).__name__
    return None


async def healthz(request):
    """Liveness: the process answers and reaches its database. ``{"database": "ok"}``, or 503
    with the error. Temporal plays no part: the web tier works without it (requests never
    call it), so an orchestrator must not restart web servers because Temporal is away."""
    db_error = await _probe(sync_to_async(_check_database, thread_sensitive=True))
    if db_error is None:
        return JsonResponse({"database": "ok"})
    return JsonResponse({"database": "error", "errors": {"database": db_error}}, status=503)


async def readyz(request):
    """Readiness: ``{"database": "ok", "temporal": "ok"}``; 503 when the database is down.
    Temporal is shown as a field, not a condition: with it unreachable signups still
    answer (their workflow starts wait in the outbox), so the server stays in rotation."""
    db_error, temporal_error = await asyncio.gather(
        _probe(sync_to_async(_check_database, thread_sensitive=True)), _probe(check_temporal)
    )
    body = {"database": "ok" if db_error is None else "error",
            "temporal": "ok" if temporal_error is None else "error"}  # fmt: skip
    errors = {k: v for k, v in (("database", db_error), ("temporal", temporal_error)) if v}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=503 if db_error else 200)


def allowed(remote_addr: str) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics(request):
    """Prometheus metrics: the request counts and latencies (``core.metrics``), the
    product's counters and its database gauges. Only addresses in ``METRICS_ALLOWED_IPS``
    (the connecting address, ``REMOTE_ADDR``) get them; anyone else gets the same 404 as an
    unknown URL. With ``PROMETHEUS_MULTIPROC_DIR`` set, the sum over gunicorn's workers."""
    if not allowed(request.META.get("REMOTE_ADDR", "")):
        return JsonResponse({"detail": "Not found."}, status=404)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry) + generate_latest(_gauges)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def tenant_home(request):
    """What a tenant host serves at ``/``. To anyone: that the workspace answers, and nothing
    that identifies its tenant beyond the host it was asked on (no id, organisation name or
    schema, so tenants cannot be enumerated). To one of its members, signed in with an API
    token: which tenant and schema answered the request."""
    body: dict = {"status": "ok"}
    tenant = request.tenant
    user = _bearer_user(request)
    if user is not None and tenant_visible_to(user=user, tenant_id=tenant.pk) is not None:
        body["tenant"] = {"id": str(tenant.pk), "name": tenant.name, "subdomain": tenant.subdomain}
        body["schema"] = connection.schema_name
    return JsonResponse(body)


def _bearer_user(request):
    try:
        found = BearerTokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else None
