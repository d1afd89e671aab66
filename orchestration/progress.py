"""Reads of workflow state for display (admin, API). Never raises: Temporal being down or a
run not existing yet is reported, not propagated — these are reads, not side effects."""

import asyncio
import concurrent.futures
from urllib.parse import quote

from django.conf import settings

from orchestration import client as temporal_client
from orchestration.receivers import provisioning_workflow_id

QUERY_TIMEOUT = 2.0  # seconds, for connecting and answering together
PROGRESS_KEYS = ("steps_done", "current_step", "total", "state", "error")


def provisioning_progress(tenant) -> dict:
    """``{"available": True, "steps_done", "current_step", "total", "state", "error"}`` from
    the ``progress`` query of the tenant's current provisioning run, or
    ``{"available": False, "reason": "<one line>"}`` when it cannot be read."""
    workflow_id = provisioning_workflow_id(tenant.pk, tenant.provisioning_attempt)

    async def query():
        async with asyncio.timeout(QUERY_TIMEOUT):
            client = await temporal_client.connect()
            # By name, so that this module does not import the workflow's.
            return await client.get_workflow_handle(workflow_id).query("progress")

    try:
        progress = _run(query())
        if not isinstance(progress, dict):
            raise TypeError(f"unexpected answer {type(progress).__name__}")
        return {"available": True, **{key: progress.get(key) for key in PROGRESS_KEYS}}
    except TimeoutError:
        return {"available": False, "reason": f"Temporal did not answer in {QUERY_TIMEOUT:g} s"}
    except Exception as exc:  # a display must not fail with Temporal
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        reason = reason.rstrip(": ")
        return {"available": False, "reason": reason if len(reason) <= 200 else reason[:199] + "…"}


def _run(coro):
    """``asyncio.run`` from sync code (the admin's views); from a thread that already runs an
    event loop, in a short-lived thread of its own instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def workflow_ui_url(workflow_id: str) -> str:
    """The workflow's page in the Temporal Web UI (2.x), which opens its latest run:
    ``/namespaces/<ns>/workflows/<id>`` redirects to ``.../<id>/<run id>``."""
    namespace = quote(settings.TEMPORAL_NAMESPACE, safe="")
    return (
        f"{settings.TEMPORAL_UI_URL}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"
    )
