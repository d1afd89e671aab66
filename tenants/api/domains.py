"""A tenant's custom domains: its members list them; its owner and admins add one (202 with
the DNS TXT record to create; a workflow looks for it until it is found or
``CUSTOM_DOMAIN_VERIFY_TIMEOUT`` has passed) and remove one. A tenant the caller may not see
answers 404; a domain it does not have, 404 too."""

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.serializers import TextField
from core.openapi import error_responses, field_errors
from tenants.api.views import (
    ONLY_MANAGERS,
    TENANT_ID,
    not_active_refusal,
    suspended_refusal,
)
from tenants.models import Domain, DomainKind, Role, TenantStatus
from tenants.roles import Action, role_may
from tenants.selectors import tenant_domains, tenant_visible_to
from tenants.services.domains import (
    TenantNotActive,
    custom_domain_add,
    custom_domain_remove,
    normalize_domain,
    txt_record_name,
)

DOMAIN = OpenApiParameter("domain", OpenApiTypes.STR, OpenApiParameter.PATH)


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 300,
        "description": "A domain name such as `www.example.com` (ASCII; an internationalised "
        "one in its `xn--` form), stored lower case without a trailing dot. Refused when it "
        "is not a domain name, is the platform's own (`TENANT_BASE_DOMAIN` or under it, "
        "`PUBLIC_HOSTS`), or is any organisation's already, or the organisation has "
        "`CUSTOM_DOMAINS_PER_TENANT` (20) already.",
    }
)
class DomainNameField(TextField):
    pass


class CustomDomainRequestSerializer(serializers.Serializer):
    domain = DomainNameField(max_length=300)


class TxtRecordSerializer(serializers.Serializer):
    type = serializers.CharField()
    name = serializers.CharField()
    value = serializers.CharField()


class CustomDomainSerializer(serializers.ModelSerializer):
    record = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Domain
        fields = [
            "domain",
            "status",
            "record",
            "created_at",
            "checked_at",
            "verified_at",
            "failing_since",
            "url",
        ]

    @extend_schema_field(TxtRecordSerializer)
    def get_record(self, domain) -> dict:
        """The DNS record that proves the domain: create it, keep it."""
        return {"type": "TXT", "name": txt_record_name(domain.domain), "value": domain.token}

    def get_url(self, domain) -> str:
        return reverse(
            "api:tenant-domain", kwargs={"tenant_id": domain.tenant_id, "domain": domain.domain}
        )


def _visible(request, tenant_id, *, manage: bool):
    """The tenant for a caller who may see it (404 otherwise), or the refusal to answer: a
    suspended tenant's (to anyone but its owner, and to its owner when ``manage``), a
    member's who is neither owner nor admin when ``manage``."""
    found = tenant_visible_to(user=request.user, tenant_id=tenant_id)
    if found is None:
        raise Http404
    tenant, role = found
    if tenant.status == TenantStatus.SUSPENDED and (manage or role != Role.OWNER):
        return tenant, suspended_refusal(tenant)
    if manage and not role_may(role, Action.CHANGE_DOMAINS):
        return tenant, Response({"detail": ONLY_MANAGERS}, status=status.HTTP_403_FORBIDDEN)
    return tenant, None


class TenantDomainsView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    @extend_schema(
        parameters=[TENANT_ID],
        responses={
            200: CustomDomainSerializer(many=True),
            **error_responses(401, 403, 404, 429, 503),
        },
    )
    def get(self, request, tenant_id):
        tenant, refusal = _visible(request, tenant_id, manage=False)
        if refusal is not None:
            return refusal
        rows = tenant_domains(tenant_id=tenant.pk, kind=DomainKind.CUSTOM)
        return Response(CustomDomainSerializer(rows, many=True).data)

    @extend_schema(
        parameters=[TENANT_ID],
        request=CustomDomainRequestSerializer,
        responses={
            202: CustomDomainSerializer,
            **error_responses(
                400,
                401,
                403,
                404,
                409,
                413,
                429,
                503,
                fields=field_errors("CustomDomainError", CustomDomainRequestSerializer),
            ),
        },
        description="Add a custom domain (owner or admin, active organisations only). It is "
        "`pending` until the TXT record the answer names is found: it is looked up with "
        "back-off until `CUSTOM_DOMAIN_VERIFY_TIMEOUT` (then `expired`). A `verified` domain "
        "serves the organisation, and is looked up again every "
        "`CUSTOM_DOMAIN_RECHECK_INTERVAL` seconds: one whose record is gone is `failing` "
        "(the owner is emailed; it still serves) and `stopped` after `CUSTOM_DOMAIN_GRACE`.",
    )
    def post(self, request, tenant_id):
        tenant, refusal = _visible(request, tenant_id, manage=True)
        if refusal is not None:
            return refusal
        data = CustomDomainRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            domain = custom_domain_add(
                tenant_id=tenant.pk, domain=data.validated_data["domain"], actor=request.user
            )
        except TenantNotActive as exc:
            return not_active_refusal(exc)
        return Response(CustomDomainSerializer(domain).data, status=status.HTTP_202_ACCEPTED)


class TenantDomainView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    @extend_schema(
        parameters=[TENANT_ID, DOMAIN],
        responses={200: CustomDomainSerializer, **error_responses(401, 403, 404, 429, 503)},
    )
    def get(self, request, tenant_id, domain):
        tenant, refusal = _visible(request, tenant_id, manage=False)
        if refusal is not None:
            return refusal
        row = Domain.objects.filter(
            tenant=tenant, kind=DomainKind.CUSTOM, domain=normalize_domain(domain)
        ).first()
        if row is None:
            raise Http404
        return Response(CustomDomainSerializer(row).data)

    @extend_schema(
        parameters=[TENANT_ID, DOMAIN],
        responses={204: None, **error_responses(401, 403, 404, 409, 429, 503)},
        description="Remove a custom domain (owner or admin, active organisations only): it "
        "stops serving at once and any organisation may add it again.",
    )
    def delete(self, request, tenant_id, domain):
        tenant, refusal = _visible(request, tenant_id, manage=True)
        if refusal is not None:
            return refusal
        try:
            custom_domain_remove(tenant_id=tenant.pk, domain=domain, actor=request.user)
        except TenantNotActive as exc:
            return not_active_refusal(exc)
        except Domain.DoesNotExist:
            raise Http404 from None
        return Response(status=status.HTTP_204_NO_CONTENT)
