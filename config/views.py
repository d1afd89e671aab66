import asyncio

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import JsonResponse

from orchestration.client import check_health as check_temporal


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
    """``{"database": "ok", "temporal": "ok"}``; 503 with the errors when either is down."""
    db_error, temporal_error = await asyncio.gather(
        _probe(sync_to_async(_check_database, thread_sensitive=True)), _probe(check_temporal)
    )
    body = {"database": "ok" if db_error is None else "error",
            "temporal": "ok" if temporal_error is None else "error"}  # fmt: skip
    errors = {k: v for k, v in (("database", db_error), ("temporal", temporal_error)) if v}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=503 if errors else 200)


def tenant_home(request):
    """What a tenant host serves at ``/``: which tenant and schema answered the request."""
    tenant = request.tenant
    return JsonResponse(
        {
            "tenant": {"id": str(tenant.pk), "name": tenant.name, "subdomain": tenant.subdomain},
            "schema": connection.schema_name,
        }
    )
