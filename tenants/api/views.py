"""Tenant API: signup (a user and their organisation), another organisation for a user, the
current user with their memberships, and a tenant's status, subdomain change, deletion and
restore for its owner and members (Bearer token). A tenant the caller may not see does not
exist, as far as this API says: 404, never 403. A suspended tenant answers its members 403
with its state and reason (``suspended_answer``); its owner can still read its status and
export its data, nothing else. A tenant scheduled for deletion answers its members 403 with
its state (``deletion_scheduled_answer``); its owner can read its status, export its data
and restore it until ``purge_at``."""

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.auth import PASSWORD_CHECKED_ERRORS, require_password
from accounts.api.serializers import PasswordSerializer
from accounts.api.views import PUBLIC_ERRORS, PublicEndpoint
from core.openapi import DeleteWithBodySchema, error_responses, field_errors
from tenants.api.serializers import (
    MeSerializer,
    OrganizationCreatedSerializer,
    OrganizationCreateSerializer,
    ProgressSerializer,
    SignupResponseSerializer,
    SignupSerializer,
    SubdomainChangeSerializer,
    TenantSummarySerializer,
)
from tenants.models import (
    LIVE,
    DomainKind,
    InvalidTransition,
    Role,
    TenantStatus,
    deletion_scheduled_answer,
    suspended_answer,
)
from tenants.roles import Action, role_may
from tenants.selectors import memberships_for_user, tenant_domains, tenant_visible_to
from tenants.services import account_signup
from tenants.services.account_closure import SoleOwner, account_close
from tenants.services.deletion import GracePeriodOver, tenant_restore, tenant_schedule_deletion
from tenants.services.domains import TenantNotActive, tenant_change_subdomain
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


class PreviousDomainSerializer(serializers.Serializer):
    domain = serializers.CharField()
    expires_at = serializers.DateTimeField(
        help_text="Until then the host answers 308 to the same path on the current one and "
        "no other organisation can take it; then it is freed."
    )


class TenantStatusSerializer(TenantSummarySerializer):
    last_error = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    previous_domains = serializers.SerializerMethodField()

    class Meta(TenantSummarySerializer.Meta):
        fields = [
            *TenantSummarySerializer.Meta.fields,
            "last_error",
            "created_at",
            "provisioned_at",
            "deleted_at",
            "suspension_reason",
            "suspended_at",
            "purge_at",
            "deletion_scheduled_at",
            "progress",
            "previous_domains",
        ]

    @extend_schema_field(PreviousDomainSerializer(many=True))
    def get_previous_domains(self, tenant) -> list[dict]:
        """Subdomains the tenant changed away from that still redirect to its current one.
        Only a live tenant can have any (a change needs an active one): the others' status
        never waits on the domains table, which their provisioning or deletion writes."""
        if tenant.status not in LIVE:
            return []
        rows = tenant_domains(tenant_id=tenant.pk, kind=DomainKind.PREVIOUS)
        return PreviousDomainSerializer(rows, many=True).data

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


ONLY_MANAGERS = "Only the owner or an admin can change this organisation's domains."


def not_active_refusal(exc: TenantNotActive) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


# The path takes any string; one that is not a tenant's UUID answers 404 like an unknown one.
TENANT_ID = OpenApiParameter("tenant_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class TenantEndpoint(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    def _tenant_and_role(self, request, tenant_id):
        found = tenant_visible_to(user=request.user, tenant_id=tenant_id)
        if found is None:
            raise Http404
        return found


def owner_only(action: str) -> Response:
    return Response(
        {"detail": f"Only the owner can {action} this organisation."},
        status=status.HTTP_403_FORBIDDEN,
    )


class TenantDetailView(TenantEndpoint):
    @extend_schema(
        parameters=[TENANT_ID],
        responses={200: TenantStatusSerializer, **error_responses(401, 403, 404, 429, 503)},
    )
    def get(self, request, tenant_id):
        tenant, role = self._tenant_and_role(request, tenant_id)
        if tenant.status == TenantStatus.SUSPENDED and role != Role.OWNER:
            return suspended_refusal(tenant)
        if tenant.status == TenantStatus.DELETION_SCHEDULED and role != Role.OWNER:
            return Response(deletion_scheduled_answer(tenant), status=status.HTTP_403_FORBIDDEN)
        return Response(TenantStatusSerializer(tenant).data)

    @extend_schema(
        parameters=[TENANT_ID],
        description="An active tenant's deletion is scheduled: `status` "
        "`deletion_scheduled`, purged at `purge_at` (`TENANT_DELETION_GRACE` seconds from "
        "now) unless restored before (`POST .../restore/`); its host stops serving at once, "
        "its data is kept until then. Asked again, the same scheduling is answered. A tenant "
        "with no data yet (pending, provisioning, failed) is deleted at once (`deleting`).",
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
            return owner_only("delete")
        try:
            tenant = tenant_schedule_deletion(tenant=tenant, actor=request.user)
        except InvalidTransition as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(TenantStatusSerializer(tenant).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[TENANT_ID],
        request=SubdomainChangeSerializer,
        responses={
            202: TenantStatusSerializer,
            **error_responses(
                400,
                401,
                403,
                404,
                409,
                413,
                429,
                503,
                fields=field_errors("SubdomainChangeError", SubdomainChangeSerializer),
            ),
        },
        description="A new subdomain (owner or admin, active organisations only; validated "
        "as at signup). The new host serves the organisation at once; the old one answers "
        "308 to the same path on the new host for `TENANT_OLD_DOMAIN_TTL` seconds (30 days), "
        "held so that no other organisation can take it, then it is freed.",
    )
    def patch(self, request, tenant_id):
        tenant, role = self._tenant_and_role(request, tenant_id)
        if tenant.status == TenantStatus.SUSPENDED:
            return suspended_refusal(tenant)
        if not role_may(role, Action.CHANGE_DOMAINS):
            return Response({"detail": ONLY_MANAGERS}, status=status.HTTP_403_FORBIDDEN)
        data = SubdomainChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            tenant = tenant_change_subdomain(
                tenant_id=tenant.pk, actor=request.user, **data.validated_data
            )
        except TenantNotActive as exc:
            return not_active_refusal(exc)
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
        except OwnerLimitReached as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        body = {"tenant": tenant, "status_url": _status_url(tenant)}
        return Response(OrganizationCreatedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


def _status_url(tenant) -> str:
    return reverse("api:tenant-detail", kwargs={"tenant_id": tenant.pk})


class TenantRestoreView(TenantEndpoint):
    @extend_schema(
        parameters=[TENANT_ID],
        request=None,
        description="Brings back a tenant scheduled for deletion, before its `purge_at`, as "
        "it was (active, or suspended for the reason it had), every row intact. `409` when "
        "it is not scheduled for deletion or its `purge_at` has come; nothing changes.",
        responses={
            200: TenantStatusSerializer,
            **error_responses(401, 403, 404, 409, 429, 503),
        },
    )
    def post(self, request, tenant_id):
        tenant, role = self._tenant_and_role(request, tenant_id)
        if role != Role.OWNER:
            return owner_only("restore")
        try:
            tenant = tenant_restore(tenant=tenant, actor=request.user)
        except InvalidTransition as exc:
            detail = f"This organisation is {exc.current}, not scheduled for deletion."
            return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
        except GracePeriodOver as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(TenantStatusSerializer(tenant).data)


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
        user, tenant, raw_token = account_signup(**data.validated_data)
        body = {
            "user": {"id": user.pk, "email": user.email},
            "tenant": tenant,
            "token": raw_token,
            "status_url": _status_url(tenant),
        }
        return Response(SignupResponseSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class SoleOwnerSerializer(serializers.Serializer):
    detail = serializers.CharField()
    tenants = TenantSummarySerializer(many=True)


class MeView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_scope = "password_check"
    schema = DeleteWithBodySchema()

    def get_throttles(self):
        # Closing the account asks for the password: throttled per user like every such
        # request. Reading it is not.
        return [ScopedRateThrottle()] if self.request.method == "DELETE" else []

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

    @extend_schema(
        request=PasswordSerializer,
        responses={
            204: OpenApiResponse(description="The account is closed."),
            409: OpenApiResponse(
                SoleOwnerSerializer,
                description="The account is the only owner of these organisations (not "
                "deleted); delete them first.",
            ),
            **error_responses(
                *PASSWORD_CHECKED_ERRORS,
                fields=field_errors("CloseAccountError", PasswordSerializer),
            ),
        },
    )
    def delete(self, request):
        """Close the account: its memberships, API tokens and personal data are removed
        (the row itself too, unless an organisation names it its owner of record: then it
        stays anonymised). Refused with 409 while it is the only owner of an organisation
        that is not deleted."""
        data = PasswordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        require_password(request, data.validated_data["password"])
        try:
            account_close(user=request.user)
        except SoleOwner as exc:
            body = {"detail": str(exc), "tenants": exc.tenants}
            return Response(SoleOwnerSerializer(body).data, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)
