"""Serializers of the tenant API: signup (which makes a tenant), a tenant's status, and the
current user's memberships."""

from django.contrib.auth.password_validation import validate_password
from rest_framework import serializers

from accounts.api.serializers import UserSerializer
from accounts.models import User
from tenants.models import Tenant, TenantStatus
from tenants.services import tenant_host
from tenants.validators import validate_subdomain


class SignupSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)
    organization_name = serializers.CharField(max_length=200)
    # Lower-cased here for convenience; the service still refuses anything that is not a
    # lower-case DNS label (and compares case-insensitively in the database).
    subdomain = serializers.CharField(max_length=63)

    # Field checks here report every field's errors in one answer; the service checks the
    # same rules again (and the database has the last word on uniqueness).
    def validate_subdomain(self, value: str) -> str:
        value = value.strip().lower()
        validate_subdomain(value)
        return value

    def validate_password(self, value: str) -> str:
        email = self.initial_data.get("email") if isinstance(self.initial_data, dict) else None
        validate_password(value, User(email=email if isinstance(email, str) else ""))
        return value


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


class MembershipSerializer(serializers.Serializer):
    role = serializers.CharField()
    tenant = TenantSummarySerializer()


class MeSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    email_verified = serializers.BooleanField()
    memberships = MembershipSerializer(many=True)
