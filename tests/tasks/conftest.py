import pytest

from tenants.models import TenantStatus
from tenants.schemas.create import create_schema
from tests.factories import TenantFactory


@pytest.fixture
def active_tenant(drop_tenant_schemas, owner):
    """``active_tenant(subdomain)``: an active tenant with its schema (no workflow)."""

    def make(subdomain: str):
        tenant = TenantFactory(owner=owner, subdomain=subdomain, status=TenantStatus.ACTIVE)
        create_schema(tenant.schema_name)
        return tenant

    return make
