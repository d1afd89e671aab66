"""Reads of workflow state for display (admin, API). Never raises: Temporal being down or a
run not existing yet is reported, not propagated — these are reads, not side effects."""

import asyncio
from urllib.parse import quote

from django.conf import settings

from orchestration import client as temporal_client
from orchestration.receivers import provisioning_workflow_id

QUERY_TIMEOUT = 2.0


def provisioning_progress(tenant) -> dict:
    """``{"available": True, "steps_done", "current_step", "total", "state", "error"}`` from
    the provisioning run's ``progress`` query, or ``{"available": False, "reason"}``."""
    workflow_id = provisioning_workflow_id(tenant.pk, tenant.provisioning_attempt)

    async def query():
        async with asyncio.timeout(QUERY_TIMEOUT):
            client = await temporal_client.connect()
            return await client.get_workflow_handle(workflow_id).query("progress")

    try:
        progress = asyncio.run(query())
    except Exception as exc:  # a display must not fail with Temporal
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return {"available": False, "reason": reason}
    keys = ("steps_done", "current_step", "total", "state", "error")
    return {"available": True, **{key: progress.get(key) for key in keys}}


def workflow_ui_url(workflow_id: str) -> str:
    """The run's page in the Temporal Web UI."""
    namespace = quote(settings.TEMPORAL_NAMESPACE, safe="")
    return (
        f"{settings.TEMPORAL_UI_URL}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"
    )
