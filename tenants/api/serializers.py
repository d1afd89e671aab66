"""Serializers of the tenant API: signup (which makes a tenant), a tenant's status, and the
current user's memberships."""

from django.contrib.auth.password_validation import validate_password
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import TextField, UserSerializer
from accounts.models import User
from tenants.models import Role, Tenant, TenantStatus
from tenants.services import tenant_host
from tenants.validators import RESERVED_SUBDOMAINS, validate_subdomain


# The schema of what signup accepts, as far as a schema can say it; the rest (taken, reserved,
# Django's password validators) is in the descriptions and answered 400.
@extend_schema_field(
    {
        "type": "string",
        # One DNS label, in any letter case, surrounding whitespace ignored (DRF trims it).
        "pattern": r"^\s*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\s*$",
        "description": "One DNS label: 1-63 letters, digits and inner hyphens, stored lower "
        "case. Refused when taken in any letter case, reserved ("
        + ", ".join(sorted(RESERVED_SUBDOMAINS))
        + ") or starting with `pg-` or `xn--`.",
    },
    # A $ref: no maxLength for the raw string (whitespace around the label is trimmed).
    component_name="Subdomain",
)
class SubdomainField(TextField):
    pass


@extend_schema_field(
    {
        "type": "string",
        "minLength": 8,
        "maxLength": 256,
        # No NUL character, and not digits only.
        "pattern": r"^[^\u0000]*[^0-9\u0000][^\u0000]*$",
        "description": "At least 8 characters, not all digits, not a common password and "
        "not too similar to the email (Django's password validators).",
    }
)
class NewPasswordField(TextField):
    pass


class SignupSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = NewPasswordField(max_length=256, trim_whitespace=False, write_only=True)
    organization_name = TextField(max_length=200)
    # Lower-cased here for convenience; the service still refuses anything that is not a
    # lower-case DNS label (and compares case-insensitively in the database).
    subdomain = SubdomainField(max_length=63)

    # Field checks here report every field's errors in one answer; the service checks the
    # same rules again (and the database has the last word on uniqueness).
    def validate_subdomain(self, value: str) -> str:
        value = value.strip()
        # Only ASCII is lower-cased: "\u212a" (the Kelvin sign) would become "k".
        value = value.lower() if value.isascii() else value
        validate_subdomain(value)
        return value

    def validate_password(self, value: str) -> str:
        email = self.initial_data.get("email") if isinstance(self.initial_data, dict) else None
        validate_password(value, User(email=email if isinstance(email, str) else ""))
        return value


class OrganizationCreateSerializer(serializers.Serializer):
    organization_name = TextField(max_length=200)
    subdomain = SubdomainField(max_length=63)

    validate_subdomain = SignupSerializer.validate_subdomain


class TenantSummarySerializer(serializers.ModelSerializer):
    domain = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["id", "name", "subdomain", "status", "domain"]

    def get_domain(self, tenant) -> str | None:
        """The host the tenant is (or will be) served at; none once it is deleted."""
        return None if tenant.status == TenantStatus.DELETED else tenant_host(tenant)


class SignupResponseSerializer(serializers.Serializer):
    user = UserSerializer()
    tenant = TenantSummarySerializer()
    token = serializers.CharField()
    status_url = serializers.CharField()


class OrganizationCreatedSerializer(serializers.Serializer):
    tenant = TenantSummarySerializer()
    status_url = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    steps_done = serializers.ListField(child=serializers.CharField())
    current_step = serializers.CharField(allow_null=True)
    total = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=["queued", "running", "compensating", "completed", "failed"]
    )
    error = serializers.CharField()


class MembershipSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    tenant = TenantSummarySerializer()


class MeSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    email_verified = serializers.BooleanField()
    memberships = MembershipSerializer(many=True)
