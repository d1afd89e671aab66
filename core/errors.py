"""Error answers as JSON with the right status, wherever Django itself answers (an error
raised outside a view's own handling: the request body over the limit, the database down,
an unknown path). The admin keeps Django's HTML pages.

Installed as ``handler400`` / ``handler404`` / ``handler500`` in both URL confs, and as
``DatabaseUnavailableMiddleware`` for views (which also covers ``DEBUG``, where Django shows
its debug page instead of calling ``handler500``).
"""

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import JsonResponse
from django.views import defaults

# How long a client should wait before trying again while the database is unavailable.
RETRY_AFTER_SECONDS = 5


def _html(request) -> bool:
    return request.path.startswith("/admin/")


def bad_request(request, exception):
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return JsonResponse(
            {"detail": f"The request body is larger than the limit of {limit} bytes."},
            status=413,
        )
    if _html(request):
        return defaults.bad_request(request, exception)
    return JsonResponse({"detail": "Bad request."}, status=400)


def not_found(request, exception):
    if _html(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": "Not found."}, status=404)


def database_unavailable() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The service is unavailable right now; try again shortly."}, status=503
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A view that meets a database outage answers 503 (JSON, ``Retry-After``), not 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DatabaseError):
            return database_unavailable()
        return None


def server_error(request):
    # Called while the exception is being handled: tell an outage from a bug.
    if isinstance(sys.exc_info()[1], DatabaseError):
        return database_unavailable()
    if _html(request):
        return defaults.server_error(request)
    return JsonResponse({"detail": "Internal server error."}, status=500)
