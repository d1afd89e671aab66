"""Public-host API of accounts' sessions and credentials: logging out (one API token or
all), listing one's API tokens, resetting a forgotten password. Thin: parse, check, call
one service."""

from contextlib import suppress

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    DetailSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
)
from accounts.api.views import PUBLIC_ERRORS, PublicEndpoint
from accounts.selectors import api_tokens_open
from accounts.services import EmailQuotaExceeded
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
        try:
            password_reset_confirm(
                raw_token=data.validated_data["token"], password=data.validated_data["password"]
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return Response({"detail": RESET_DONE})
