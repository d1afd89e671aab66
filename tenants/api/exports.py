"""Tenant data exports: the owner asks for one (202 with a status URL), follows the status
URL, and once it is ready downloads it through a signed link that expires after
``TENANT_EXPORT_LINK_TTL`` seconds. A tenant the caller may not see answers 404; one with
``TENANT_EXPORTS_IN_FLIGHT`` exports pending or running answers 429."""

from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.openapi import ErrorSerializer, error_responses
from tenants.api.views import TENANT_ID, suspended_refusal
from tenants.exports import (
    ExportLinkExpired,
    TenantNotExportable,
    TooManyExportsInFlight,
    download_token,
    export_for_token,
    export_request,
)
from tenants.models import (
    ExportStatus,
    Role,
    TenantExport,
    TenantStatus,
    deletion_scheduled_answer,
)
from tenants.roles import Action, role_may
from tenants.selectors import tenant_visible_to

EXPORT_ID = OpenApiParameter("export_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class ExportSerializer(serializers.ModelSerializer):
    status_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    download_expires_at = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = TenantExport
        fields = [
            "id",
            "status",
            "created_at",
            "finished_at",
            "size",
            "tables",
            "error",
            "status_url",
            "download_url",
            "download_expires_at",
        ]

    def get_status_url(self, export) -> str:
        return reverse(
            "api:tenant-export", kwargs={"tenant_id": export.tenant_id, "export_id": export.pk}
        )

    def _link(self, export):
        if export.status != ExportStatus.READY:
            return None
        if "_link" not in self.context:  # one token per answer, for both fields
            self.context["_link"] = download_token(export)
        return self.context["_link"]

    def get_download_url(self, export) -> str | None:
        """A link anyone holding it can use until ``download_expires_at`` (no token
        needed: the link is the credential); null until the export is ready."""
        link = self._link(export)
        return None if link is None else reverse("api:export-download", args=[link[0]])

    def get_download_expires_at(self, export) -> str | None:
        link = self._link(export)
        return None if link is None else link[1].isoformat()

    def get_error(self, export) -> str:
        # The internal message can name hosts and paths; the admin has it in full.
        return "The export failed." if export.status == ExportStatus.FAILED else ""


def _exportable_tenant(request, tenant_id):
    """``(tenant, refusal)``: the tenant, and None for an owner or an admin; 404 for anyone
    who may not see it; a 403 for a member, and for anyone but an owner while it is
    suspended or scheduled for deletion (its owner can still export its data)."""
    found = tenant_visible_to(user=request.user, tenant_id=tenant_id)
    if found is None:
        raise Http404
    tenant, role = found
    if tenant.status == TenantStatus.SUSPENDED and role != Role.OWNER:
        return tenant, suspended_refusal(tenant)
    if tenant.status == TenantStatus.DELETION_SCHEDULED and role != Role.OWNER:
        scheduled = deletion_scheduled_answer(tenant)
        return tenant, Response(scheduled, status=status.HTTP_403_FORBIDDEN)
    if not role_may(role, Action.EXPORT):
        return tenant, Response({"detail": ONLY_OWNER}, status=status.HTTP_403_FORBIDDEN)
    return tenant, None


ONLY_OWNER = "Only an owner or an admin can export this organisation's data."
# Seconds a request refused for the exports in flight is told to wait: an export of a
# small tenant takes seconds, a large one minutes.
IN_FLIGHT_RETRY_AFTER = 30


class TenantExportsView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    @extend_schema(
        parameters=[TENANT_ID],
        request=None,
        responses={
            202: ExportSerializer,
            **error_responses(401, 403, 404, 409, 503),
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many requests (the `Retry-After` header says how many "
                "seconds to wait), or the organisation already has as many exports pending "
                "or running as it may (`TENANT_EXPORTS_IN_FLIGHT`, 2 by default): nothing "
                "was recorded; ask again once one has finished.",
            ),
        },
    )
    def post(self, request, tenant_id):
        tenant, refused = _exportable_tenant(request, tenant_id)
        if refused:
            return refused
        try:
            export = export_request(tenant=tenant, user=request.user)
        except TenantNotExportable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except TooManyExportsInFlight as exc:
            return Response(
                {"detail": str(exc)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER)},
            )
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class TenantExportView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    @extend_schema(
        parameters=[TENANT_ID, EXPORT_ID],
        responses={200: ExportSerializer, **error_responses(401, 403, 404, 429, 503)},
    )
    def get(self, request, tenant_id, export_id):
        tenant, refused = _exportable_tenant(request, tenant_id)
        if refused:
            return refused
        export = TenantExport.objects.filter(tenant=tenant, pk=_uuid_or_404(export_id)).first()
        if export is None:
            raise Http404
        return Response(ExportSerializer(export).data)


def _uuid_or_404(value: str):
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


class ExportDownloadView(APIView):
    """The zip, for whoever holds a link that has not expired."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The zip."),
            404: OpenApiResponse(ErrorSerializer, description="Not a download link of ours."),
            410: OpenApiResponse(ErrorSerializer, description="The link has expired."),
            **error_responses(503),
        },
    )
    def get(self, request, token):
        try:
            export = export_for_token(token)
        except ExportLinkExpired:
            return Response(
                {
                    "detail": "This download link has expired; ask for the export's status "
                    "again for a new one."
                },
                status=status.HTTP_410_GONE,
            )
        if export is None:
            raise Http404
        from django.core.files.storage import default_storage

        if not default_storage.exists(export.file_name):
            raise Http404
        return FileResponse(
            default_storage.open(export.file_name, "rb"),
            as_attachment=True,
            filename=f"export-{export.tenant_id}-{export.created_at:%Y%m%d-%H%M%S}.zip",
            content_type="application/zip",
        )
