"""Login lockout (django-axes): after ``LOGIN_FAILURE_LIMIT`` failed logins for one account
from one address, further attempts for that account from that address are refused for
``LOGIN_COOLOFF_MINUTES``, on the admin's login page and on ``POST /api/v1/auth/token/``
alike."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.html import escape
from rest_framework.throttling import BaseThrottle


def client_address(request) -> str:
    """The client's address as the API's throttling reads it: ``REMOTE_ADDR``, or behind
    ``NUM_PROXIES`` proxies the address the outermost one appended to ``X-Forwarded-For``
    (counted from the right), which a client cannot choose by sending the header itself."""
    return BaseThrottle().get_ident(request)


def login_username(request, credentials: dict | None) -> str:
    """The account a login attempt is for: the admin form's ``username``, or the API's
    ``email``; compared in lower case, as logins are."""
    credentials = credentials or {}
    value = credentials.get("username") or credentials.get("email")
    if value is None and request is not None:
        value = request.POST.get("username")
    return (value or "").strip().lower()


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    minutes = settings.LOGIN_COOLOFF_MINUTES
    message = (
        "Too many failed logins for this account from this address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )
    if request.path.startswith("/admin/"):
        response = HttpResponse(
            f"<!doctype html><title>Login locked</title><h1>Login locked</h1>"
            f"<p>{escape(message)}</p>",
            status=429,
        )
    else:
        response = JsonResponse({"detail": message}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response
