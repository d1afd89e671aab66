import asyncio

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import JsonResponse
from rest_framework.exceptions import AuthenticationFailed

from accounts.api.authentication import BearerTokenAuthentication
from orchestration.client import check_health as check_temporal
from tenants.selectors import tenant_visible_to


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
