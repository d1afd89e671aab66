"""Links from the admin to the Temporal Web UI."""

from urllib.parse import quote

from django.conf import settings


def workflow_ui_url(workflow_id: str, run_id: str = "") -> str:
    """The workflow's page in the Temporal Web UI (2.x), which opens its latest run:
    ``/namespaces/<ns>/workflows/<id>`` redirects to ``.../<id>/<run id>``; with ``run_id``,
    that run's page."""
    namespace = quote(settings.TEMPORAL_NAMESPACE, safe="")
    url = (
        f"{settings.TEMPORAL_UI_URL}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"
    )
    return f"{url}/{quote(run_id, safe='')}" if run_id else url
