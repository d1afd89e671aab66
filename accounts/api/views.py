"""Public-host API of accounts: tokens and email verification. Thin: parse, check, call one
service. (Signup and ``/me/`` show tenants, so they live in ``tenants.api``.)"""

from contextlib import suppress
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.serializers import (
    LoginSerializer,
    ResendVerificationSerializer,
    TokenSerializer,
    VerifyEmailSerializer,
)
from accounts.models import TokenPurpose
from accounts.services import (
    EmailQuotaExceeded,
    token_issue,
    user_verify_email,
    verification_email_resend,
)
from core.openapi import error_responses, field_errors

# Every public endpoint reads a JSON body, is throttled per client IP and reads the database.
PUBLIC_ERRORS = (400, 413, 429, 503)


class PublicEndpoint(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]


class TokenView(PublicEndpoint):
    throttle_scope = "login"

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            **error_responses(*PUBLIC_ERRORS, fields=field_errors("LoginError", LoginSerializer)),
        },
    )
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Django's request, so that a lockout (django-axes) marks it and the middleware
        # answers 429 with the lockout message.
        user = authenticate(
            request._request,
            email=data.validated_data["email"],
            password=data.validated_data["password"],
        )
        if user is None:
            # One answer for unknown emails and wrong passwords alike.
            raise serializers.ValidationError({"non_field_errors": ["Invalid email or password."]})
        _, raw = token_issue(
            user=user, purpose=TokenPurpose.API, ttl=timedelta(days=settings.API_TOKEN_TTL_DAYS)
        )
        return Response({"token": raw})


class VerifyEmailView(PublicEndpoint):
    throttle_scope = "verify"

    @extend_schema(
        request=VerifyEmailSerializer,
        responses={
            200: inline_serializer("EmailVerified", {"email_verified": serializers.BooleanField()}),
            **error_responses(
                *PUBLIC_ERRORS, fields=field_errors("VerifyEmailError", VerifyEmailSerializer)
            ),
        },
    )
    def post(self, request):
        data = VerifyEmailSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_verify_email(raw_token=data.validated_data["token"])
        if user is None:
            raise serializers.ValidationError({"token": ["Invalid, used or expired token."]})
        return Response({"email_verified": True})


RESEND_ANSWER = (
    "If this address has an account whose email is not verified yet, a verification email "
    "is on its way."
)


class ResendVerificationView(PublicEndpoint):
    """The same answer whether or not the address has an account, and whether or not its
    email went out or was held back by the per-recipient limits (no oracle)."""

    throttle_scope = "resend"

    @extend_schema(
        request=ResendVerificationSerializer,
        responses={
            202: inline_serializer("ResendAccepted", {"detail": serializers.CharField()}),
            **error_responses(
                *PUBLIC_ERRORS,
                fields=field_errors("ResendVerificationError", ResendVerificationSerializer),
            ),
        },
    )
    def post(self, request):
        data = ResendVerificationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with suppress(EmailQuotaExceeded):
            verification_email_resend(email=data.validated_data["email"])
        return Response({"detail": RESEND_ANSWER}, status=status.HTTP_202_ACCEPTED)
