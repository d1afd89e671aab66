"""Public-host API: signup, tokens, email verification, the current user. Thin: parse,
check, call one service."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.serializers import (
    LoginSerializer,
    MeSerializer,
    SignupResponseSerializer,
    SignupSerializer,
    TokenSerializer,
    VerifyEmailSerializer,
)
from accounts.models import TokenPurpose
from accounts.selectors import memberships_for_user
from accounts.services import account_signup, token_issue, user_verify_email


class PublicEndpoint(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]


class SignupView(PublicEndpoint):
    throttle_scope = "signup"

    @extend_schema(request=SignupSerializer, responses={202: SignupResponseSerializer})
    def post(self, request):
        data = SignupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user, tenant, raw_token = account_signup(**data.validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        body = {
            "user": {"id": user.pk, "email": user.email},
            "tenant": tenant,
            "token": raw_token,
            "status_url": reverse("api:tenant-detail", kwargs={"tenant_id": tenant.pk}),
        }
        return Response(SignupResponseSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class TokenView(PublicEndpoint):
    throttle_scope = "login"

    @extend_schema(request=LoginSerializer, responses={200: TokenSerializer})
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request, email=data.validated_data["email"], password=data.validated_data["password"]
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
            200: inline_serializer("EmailVerified", {"email_verified": serializers.BooleanField()})
        },
    )
    def post(self, request):
        data = VerifyEmailSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_verify_email(raw_token=data.validated_data["token"])
        if user is None:
            raise serializers.ValidationError({"token": ["Invalid, used or expired token."]})
        return Response({"email_verified": True})


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        user = request.user
        body = {
            "id": user.pk,
            "email": user.email,
            "email_verified": user.email_verified_at is not None,
            "memberships": [
                {"role": m.role, "tenant": m.tenant} for m in memberships_for_user(user=user)
            ],
        }
        return Response(MeSerializer(body).data)
