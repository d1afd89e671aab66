"""Public-host API of accounts' sessions and credentials: logging out (one API token or
all), listing one's API tokens, resetting a forgotten password, changing one's email.
Thin: parse, check, call one service."""

from contextlib import suppress

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.serializers import (
    DetailSerializer,
    EmailChangeConfirmSerializer,
    EmailChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
)
from accounts.api.views import PUBLIC_ERRORS, PublicEndpoint
from accounts.selectors import api_tokens_open
from accounts.services import EmailQuotaExceeded
from accounts.services.email_change import email_change_confirm, email_change_request
from accounts.services.passwords import password_reset_confirm, password_reset_request
from accounts.services.sessions import token_revoke, tokens_revoke_all
from core.openapi import error_responses, field_errors


class ApiTokenSerializer(serializers.Serializer):
    prefix = serializers.CharField(help_text="The token's first 8 characters.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(
        allow_null=True, help_text="The last request it authenticated, to the minute."
    )
    current = serializers.BooleanField(help_text="Whether it authenticated this request.")


class TokenListSerializer(serializers.Serializer):
    tokens = ApiTokenSerializer(many=True)


class LogoutView(APIView):
    """Revokes the API token the request is made with; it answers 401 from then on."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Logged out."), **error_responses(401, 503)},
    )
    def post(self, request):
        token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revokes every API token of the user, the one the request is made with included."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            204: OpenApiResponse(description="Every API token revoked."),
            **error_responses(401, 503),
        },
    )
    def post(self, request):
        tokens_revoke_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(APIView):
    """The user's API tokens that still authenticate (never their values)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: TokenListSerializer, **error_responses(401, 503)})
    def get(self, request):
        tokens = [
            {
                "prefix": t.prefix,
                "created_at": t.created_at,
                "expires_at": t.expires_at,
                "last_used_at": t.last_used_at,
                "current": t.pk == request.auth.pk,
            }
            for t in api_tokens_open(user=request.user)
        ]
        return Response(TokenListSerializer({"tokens": tokens}).data)


RESET_ANSWER = (
    "If this address has an account, an email with a password reset token is on its way. "
    "The token can be used once, for a limited time (the email says until when)."
)


class PasswordResetView(PublicEndpoint):
    """The same answer, and the same work, whether or not the address has an account, and
    whether or not its email went out or was held back by the per-recipient limits."""

    throttle_scope = "password_reset"

    @extend_schema(
        request=PasswordResetSerializer,
        responses={
            202: DetailSerializer,
            **error_responses(
                *PUBLIC_ERRORS, fields=field_errors("PasswordResetError", PasswordResetSerializer)
            ),
        },
    )
    def post(self, request):
        data = PasswordResetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with suppress(EmailQuotaExceeded):
            password_reset_request(email=data.validated_data["email"])
        return Response({"detail": RESET_ANSWER}, status=status.HTTP_202_ACCEPTED)


RESET_DONE = (
    "Password changed. Every API token of this account was revoked: get a new one from "
    "/api/v1/auth/token/."
)


class PasswordResetConfirmView(PublicEndpoint):
    throttle_scope = "verify"

    @extend_schema(
        request=PasswordResetConfirmSerializer,
        responses={
            200: DetailSerializer,
            **error_responses(
                *PUBLIC_ERRORS,
                fields=field_errors("PasswordResetConfirmError", PasswordResetConfirmSerializer),
            ),
        },
    )
    def post(self, request):
        data = PasswordResetConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        password_reset_confirm(
            raw_token=data.validated_data["token"], password=data.validated_data["password"]
        )
        return Response({"detail": RESET_DONE})


WRONG_PASSWORD = "Wrong password."  # noqa: S105 - a message


# What a request that checks the user's password can answer besides its success.
PASSWORD_CHECKED_ERRORS = (400, 401, 413, 429, 503)


def require_password(request, password: str) -> None:
    """Refuse (400, ``password``) unless ``password`` is the request's user's, checked as a
    login is: through Django's authentication and the login lockout (django-axes), so a
    wrong one counts towards ``LOGIN_FAILURE_LIMIT`` and, once locked, the middleware
    answers 429."""
    user = authenticate(request._request, email=request.user.email, password=password)
    if user is None or user.pk != request.user.pk:
        raise serializers.ValidationError({"password": [WRONG_PASSWORD]})


class PasswordCheckedEndpoint(APIView):
    """An action on the caller's own account that asks for their password again: throttled
    per user (``THROTTLE_PASSWORD_CHECK``) on top of the login lockout."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "password_check"


class EmailChangeView(PasswordCheckedEndpoint):
    @extend_schema(
        request=EmailChangeSerializer,
        responses={
            202: DetailSerializer,
            **error_responses(
                *PASSWORD_CHECKED_ERRORS,
                fields=field_errors("EmailChangeError", EmailChangeSerializer),
            ),
        },
    )
    def post(self, request):
        """Ask to change the account's email. The new address gets a confirmation token and
        the current one a notice; the email changes only when the token is used
        (``POST /api/v1/auth/email-change/confirm/``). An address another account has is
        refused with the words signup uses."""
        data = EmailChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        require_password(request, data.validated_data["password"])
        try:
            change = email_change_request(user=request.user, new_email=data.validated_data["email"])
        except EmailQuotaExceeded as exc:
            return Response(
                {"detail": f"No email can go to that address now: {exc}."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(exc.retry_after)},
            )
        detail = (
            f"A confirmation token is on its way to {change.new_email}; the account's email "
            f"stays {change.old_email}, which is told, until the token is used."
        )
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class EmailChangeConfirmView(PublicEndpoint):
    throttle_scope = "verify"

    @extend_schema(
        request=EmailChangeConfirmSerializer,
        responses={
            200: inline_serializer("EmailChanged", {"email": serializers.EmailField()}),
            **error_responses(
                *PUBLIC_ERRORS,
                fields=field_errors("EmailChangeConfirmError", EmailChangeConfirmSerializer),
            ),
        },
    )
    def post(self, request):
        data = EmailChangeConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = email_change_confirm(raw_token=data.validated_data["token"])
        return Response({"email": user.email})
