"""The views the URL confs serve themselves: health and readiness probes, ``/metrics`` and a
tenant host's ``/``. Each reads across the apps (database, Temporal, the product's gauges,
memberships), so they live here, on the floor that may import every app.
"""

import asyncio
import concurrent.futures
import ipaddress
import logging
import os

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from rest_framework.exceptions import AuthenticationFailed

from accounts.api.authentication import BearerTokenAuthentication
from core.db import deadline
from core.errors import RETRY_AFTER_SECONDS
from orchestration.client import check_health as check_temporal
from orchestration.metrics import DatabaseGauges
from tenants.selectors import tenant_visible_to
from tenants.workspace.models import Project

_gauges = CollectorRegistry()
_gauges.register(DatabaseGauges())

logger = logging.getLogger("tenantflow.health")

# Health answers within this many seconds, whatever the database or Temporal do.
HEALTH_TIMEOUT = 1.0
# The database probes run on these threads, never on the request's: a probe stuck on a
# stalled database holds one of them (until its query deadline ends it), not the answer.
_PROBES = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health")


def _check_database() -> None:
    try:
        with deadline(HEALTH_TIMEOUT), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # back to the pool: this thread serves the next probe


async def _database_probe() -> None:
    await asyncio.get_running_loop().run_in_executor(_PROBES, _check_database)


async def _probe(name: str, check) -> bool:
    """Whether ``check`` passes within ``HEALTH_TIMEOUT``. The error is logged, never shown:
    anyone may call the health endpoints."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await check()
    except Exception as exc:
        logger.warning("health: %s unavailable: %s: %s", name, type(exc).__name__, exc)
        return False
    return True


def _answer(body: dict[str, str], *, healthy: bool) -> JsonResponse:
    response = JsonResponse(body, status=200 if healthy else 503)
    if not healthy:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def healthz(request):
    """Liveness: the process answers and reaches its database: ``{"database": "ok"}``, or
    503 with ``"unavailable"``, within ``HEALTH_TIMEOUT`` seconds whatever the database does.
    Temporal plays no part: the web tier works without it (requests never call it), so an
    orchestrator must not restart web servers because Temporal is away."""
    database = await _probe("database", _database_probe)
    return _answer({"database": "ok" if database else "unavailable"}, healthy=database)


async def readyz(request):
    """Readiness: ``{"database": "ok", "temporal": "ok"}``; 503 when the database is
    unavailable. Temporal is shown as a field, not a condition: with it unreachable signups
    still answer (their workflow starts wait in the outbox), so the server stays in
    rotation."""
    database, temporal = await asyncio.gather(
        _probe("database", _database_probe), _probe("temporal", check_temporal)
    )
    body = {
        "database": "ok" if database else "unavailable",
        "temporal": "ok" if temporal else "unavailable",
    }
    return _answer(body, healthy=database)


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
    token: which tenant, schema and database answered the request, and how many projects
    its workspace holds."""
    body: dict = {"status": "ok"}
    tenant = request.tenant
    user = _bearer_user(request)
    if user is not None and tenant_visible_to(user=user, tenant_id=tenant.pk) is not None:
        body["tenant"] = {"id": str(tenant.pk), "name": tenant.name, "subdomain": tenant.subdomain}
        body["schema"] = connection.schema_name
        body["database"] = tenant.database
        body["projects"] = Project.objects.count()  # read in the schema, in its database
    return JsonResponse(body)


def _bearer_user(request):
    try:
        found = BearerTokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else None
