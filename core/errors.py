"""Error answers that tell the truth, as JSON with the right status wherever Django itself
answers (a body over the limit, the database down, an unknown path), under ``DEBUG`` too.
The admin keeps Django's HTML pages.

* 503 (``Retry-After``) only when the database cannot be reached or did not answer in time
  (``OperationalError``, ``InterfaceError``: a refused or dropped connection, a connection
  or query deadline, a server shutting down). Any other database error (an integrity or
  programming error, bad data) is a bug: a logged 500 with the request id.
* Installed as ``handler400`` / ``handler404`` / ``handler500`` in both URL confs, and as
  ``ErrorsMiddleware`` for views, which also answers where ``DEBUG`` would show Django's
  debug page.
* ``api_exception_handler`` (DRF's ``EXCEPTION_HANDLER``): a Django ``ValidationError`` with
  field errors, raised by a service a view calls, is a 400 with those fields, as a
  serializer's would be.
* ``DatabaseDeadlineMiddleware`` bounds every query a request makes
  (``DATABASE_REQUEST_TIMEOUT``): a stalled database fails the request in seconds instead of
  holding its thread.
"""

import contextlib
import logging
import sys

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    ValidationError,
)
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.views import exception_handler

from core.db import deadline

logger = logging.getLogger("tenantflow.errors")

# How long a client should wait before trying again while the database is unavailable.
RETRY_AFTER_SECONDS = 5

# The database could not be reached or did not answer: an outage, not a bug.
CONNECTION_ERRORS = (OperationalError, InterfaceError)

_DETAILS = {
    400: "Bad request.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    500: "Internal server error.",
}


def _html(request) -> bool:
    return request.path.startswith("/admin/")


def _too_big() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return JsonResponse(
        {"detail": f"The request body is larger than the limit of {limit} bytes."}, status=413
    )


def _internal_error(request) -> JsonResponse:
    body = {"detail": _DETAILS[500]}
    if request_id := getattr(request, "request_id", None):
        body["request_id"] = request_id  # the id on the logged traceback
    return JsonResponse(body, status=500)


def bad_request(request, exception):
    if isinstance(exception, RequestDataTooBig):
        return _too_big()
    if _html(request):
        return defaults.bad_request(request, exception)
    return JsonResponse({"detail": _DETAILS[400]}, status=400)


def not_found(request, exception):
    if _html(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": _DETAILS[404]}, status=404)


def database_unavailable() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The service is unavailable right now; try again shortly."}, status=503
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseDeadlineMiddleware:
    """Every query of a request must finish within ``DATABASE_REQUEST_TIMEOUT`` seconds of
    the request's start (``core.db.deadline``); one that does not fails with
    ``OperationalError``, answered 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with contextlib.ExitStack() as blocks:
            for alias in settings.DATABASES:  # a tenant's schema may be in another database
                blocks.enter_context(deadline(settings.DATABASE_REQUEST_TIMEOUT, using=alias))
            return self.get_response(request)


class ErrorsMiddleware:
    """A view's exception answered as the handlers answer it, also under ``DEBUG``; and
    outside the admin, an HTML error page Django made itself under ``DEBUG`` (an unknown
    path) replaced by its JSON answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and response.status_code in _DETAILS
            and not _html(request)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            if response.status_code == 500:
                return _internal_error(request)
            return JsonResponse(
                {"detail": _DETAILS[response.status_code]}, status=response.status_code
            )
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, CONNECTION_ERRORS):
            logger.warning("database unavailable: %s", type(exception).__name__, exc_info=True)
            return database_unavailable()
        if _html(request):
            return None  # the admin: Django's own pages
        if isinstance(exception, RequestDataTooBig):
            return _too_big()
        if isinstance(exception, (SuspiciousOperation, BadRequest)):
            return JsonResponse({"detail": _DETAILS[400]}, status=400)
        if isinstance(exception, PermissionDenied):
            return JsonResponse({"detail": _DETAILS[403]}, status=403)
        if isinstance(exception, Http404):
            return JsonResponse({"detail": _DETAILS[404]}, status=404)
        logger.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=(type(exception), exception, exception.__traceback__),
        )
        return _internal_error(request)


def server_error(request):
    # Called while the exception is being handled: tell an outage from a bug.
    if isinstance(sys.exc_info()[1], CONNECTION_ERRORS):
        return database_unavailable()
    if _html(request):
        return defaults.server_error(request)
    return _internal_error(request)


def api_exception_handler(exc, context):
    """DRF's own handler, which also answers a service's ``ValidationError`` of fields."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        exc = exceptions.ValidationError(exc.message_dict)
    return exception_handler(exc, context)
