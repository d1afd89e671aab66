"""Tenant API: signup (a user and their organisation), another organisation for a user, the
current user with their memberships, and a tenant's status and deletion for its owner and
members (Bearer token).
A tenant the caller may not see does not exist, as far as this API says: 404, never 403.
A suspended tenant answers its members 403 with its state and reason (``suspended_answer``);
its owner can still read its status and export its data, nothing else."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.views import PUBLIC_ERRORS, PublicEndpoint
from core.openapi import error_responses, field_errors
from tenants.api.serializers import (
    MeSerializer,
    OrganizationCreatedSerializer,
    OrganizationCreateSerializer,
    ProgressSerializer,
    SignupResponseSerializer,
    SignupSerializer,
    TenantSummarySerializer,
)
from tenants.models import InvalidTransition, Role, TenantStatus, suspended_answer
from tenants.roles import Action, role_may
from tenants.selectors import memberships_for_user, tenant_visible_to
from tenants.services import account_signup, tenant_request_deletion
from tenants.services.organizations import OwnerLimitReached, organization_create


def suspended_refusal(tenant) -> Response:
    return Response(suspended_answer(tenant), status=status.HTTP_403_FORBIDDEN)


# A run is under way: the answer shows its progress.
RUNNING = frozenset({TenantStatus.PENDING, TenantStatus.PROVISIONING, TenantStatus.DELETING})


def public_error(reason: str) -> str:
    """What a tenant's users are told of a failure: the step, not its internal message
    (which can name database hosts and ports; the admin shows it in full)."""
    if not reason:
        return ""
    step = reason.split(":", 1)[0].strip()
    if step.isidentifier():
        return f"Provisioning failed at step {step}."
    return "Provisioning failed."


class TenantStatusSerializer(TenantSummarySerializer):
    last_error = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta(TenantSummarySerializer.Meta):
        fields = [
            *TenantSummarySerializer.Meta.fields,
            "last_error",
            "created_at",
            "provisioned_at",
            "deleted_at",
            "suspension_reason",
            "suspended_at",
            "progress",
        ]

    def get_last_error(self, tenant) -> str:
        return public_error(tenant.last_error)

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, tenant) -> dict | None:
        """The current run's progress, read from the tenant row (its activities write it):
        a status request never waits on Temporal."""
        if tenant.status not in RUNNING or not tenant.workflow_id:
            return None
        return {
            "steps_done": tenant.steps_done,
            "current_step": tenant.current_step or None,
            "total": tenant.steps_total,
            "state": tenant.run_state,
            "error": public_error(tenant.last_error),
        }


# The path takes any string; one that is not a tenant's UUID answers 404 like an unknown one.
TENANT_ID = OpenApiParameter("tenant_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class TenantDetailView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    def _tenant_and_role(self, request, tenant_id):
        found = tenant_visible_to(user=request.user, tenant_id=tenant_id)
        if found is None:
            raise Http404
        return found

    @extend_schema(
        parameters=[TENANT_ID],
        responses={200: TenantStatusSerializer, **error_responses(401, 403, 404, 429, 503)},
    )
    def get(self, request, tenant_id):
        tenant, role = self._tenant_and_role(request, tenant_id)
        if tenant.status == TenantStatus.SUSPENDED and role != Role.OWNER:
            return suspended_refusal(tenant)
        return Response(TenantStatusSerializer(tenant).data)

    @extend_schema(
        parameters=[TENANT_ID],
        responses={
            202: TenantStatusSerializer,
            **error_responses(401, 403, 404, 409, 429, 503),
        },
    )
    def delete(self, request, tenant_id):
        tenant, role = self._tenant_and_role(request, tenant_id)
        if tenant.status == TenantStatus.SUSPENDED:
            return suspended_refusal(tenant)
        if not role_may(role, Action.DELETE):
            return Response(
                {"detail": "Only the owner can delete this organisation."},
                status=status.HTTP_403_FORBIDDEN,
            )
        try:
            tenant = tenant_request_deletion(tenant_id=tenant.pk)
        except InvalidTransition as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(TenantStatusSerializer(tenant).data, status=status.HTTP_202_ACCEPTED)


class TenantListView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "organization"

    @extend_schema(
        request=OrganizationCreateSerializer,
        responses={
            202: OrganizationCreatedSerializer,
            **error_responses(
                400,
                401,
                409,
                413,
                429,
                503,
                fields=field_errors("OrganizationError", OrganizationCreateSerializer),
            ),
        },
        description="Another organisation for the caller, who becomes its owner; provisioned "
        "like a signup's (`202`, then poll `status_url`). `409` when the caller already owns "
        "`TENANTS_PER_OWNER` organisations that are not deleted.",
    )
    def post(self, request):
        data = OrganizationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            tenant = organization_create(owner=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        except OwnerLimitReached as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        body = {"tenant": tenant, "status_url": _status_url(tenant)}
        return Response(OrganizationCreatedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


def _status_url(tenant) -> str:
    return reverse("api:tenant-detail", kwargs={"tenant_id": tenant.pk})


class SignupView(PublicEndpoint):
    throttle_scope = "signup"

    @extend_schema(
        request=SignupSerializer,
        responses={
            202: SignupResponseSerializer,
            **error_responses(*PUBLIC_ERRORS, fields=field_errors("SignupError", SignupSerializer)),
        },
    )
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
            "status_url": _status_url(tenant),
        }
        return Response(SignupResponseSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: MeSerializer, **error_responses(401, 503)})
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
