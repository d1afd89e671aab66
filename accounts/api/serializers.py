from rest_framework import serializers

from tenants.models import Tenant


class SignupSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)
    organization_name = serializers.CharField(max_length=200)
    # Lower-cased here for convenience; the service still refuses anything that is not a
    # lower-case DNS label (and compares case-insensitively in the database).
    subdomain = serializers.CharField(max_length=63)

    def validate_subdomain(self, value: str) -> str:
        return value.strip().lower()


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)


class VerifyEmailSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class UserSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()


class TenantSummarySerializer(serializers.ModelSerializer):
    domain = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["id", "name", "subdomain", "status", "domain"]

    def get_domain(self, tenant) -> str:
        from tenants.services import tenant_host

        return tenant_host(tenant)


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
