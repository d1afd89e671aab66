"""Tenant status and deletion for its owner and members (Bearer token). A tenant the caller
may not see does not exist, as far as this API says: 404, never 403."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.serializers import TenantSummarySerializer
from accounts.models import Role
from orchestration.progress import provisioning_progress
from tenants.models import InvalidTransition, TenantStatus
from tenants.selectors import tenant_visible_to
from tenants.services import tenant_request_deletion


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
        fields = [*TenantSummarySerializer.Meta.fields, "last_error", "created_at",
                  "provisioned_at", "deleted_at", "progress"]  # fmt: skip

    def get_last_error(self, tenant) -> str:
        return public_error(tenant.last_error)

    def get_progress(self, tenant) -> dict | None:
        if tenant.status not in (TenantStatus.PENDING, TenantStatus.PROVISIONING):
            return None
        progress = provisioning_progress(tenant)
        if not progress["available"]:
            # The reason can name internal hosts and ports: keep it for the admin only.
            return {"available": False, "reason": "Progress is not available right now."}
        return {**progress, "error": public_error(progress["error"] or "")}


class TenantDetailView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    def _tenant_and_role(self, request, tenant_id):
        found = tenant_visible_to(user=request.user, tenant_id=tenant_id)
        if found is None:
            raise Http404
        return found

    @extend_schema(responses={200: TenantStatusSerializer})
    def get(self, request, tenant_id):
        tenant, _ = self._tenant_and_role(request, tenant_id)
        return Response(TenantStatusSerializer(tenant).data)

    @extend_schema(responses={202: TenantStatusSerializer})
    def delete(self, request, tenant_id):
        tenant, role = self._tenant_and_role(request, tenant_id)
        if role != Role.OWNER:
            return Response(
                {"detail": "Only the owner can delete this organisation."},
                status=status.HTTP_403_FORBIDDEN,
            )
        try:
            tenant = tenant_request_deletion(tenant_id=tenant.pk)
        except InvalidTransition as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(TenantStatusSerializer(tenant).data, status=status.HTTP_202_ACCEPTED)
