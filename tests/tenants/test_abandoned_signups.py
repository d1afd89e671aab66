"""What befalls the organisations of an owner who never verifies their email (the services
UserOnboardingWorkflow's last stages call)."""

import pytest
from django.utils import timezone

from orchestration.models import OutboxEntry
from tenants.models import SuspensionReason, Tenant, TenantStatus
from tenants.services import tenant_suspend
from tenants.services.organizations import (
    tenants_delete_unverified,
    tenants_reactivate_verified,
    tenants_suspend_unverified,
)
from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def statuses(owner) -> dict[str, tuple[str, str]]:
    return {
        t.subdomain: (t.status, t.suspension_reason) for t in Tenant.objects.filter(owner=owner)
    }


@pytest.fixture
def owner():
    owner = UserFactory()
    TenantFactory(owner=owner, subdomain="a", status=TenantStatus.ACTIVE)
    TenantFactory(owner=owner, subdomain="b", status=TenantStatus.ACTIVE)
    TenantFactory(owner=owner, subdomain="failed", status=TenantStatus.FAILED)
    billing = TenantFactory(owner=owner, subdomain="billing", status=TenantStatus.ACTIVE)
    tenant_suspend(tenant=billing, reason=SuspensionReason.BILLING)
    return owner


def test_suspends_the_active_ones_twice_harmlessly_and_no_one_elses(owner):
    other = TenantFactory(subdomain="other", status=TenantStatus.ACTIVE)
    assert tenants_suspend_unverified(owner_id=owner.pk) == 2
    assert tenants_suspend_unverified(owner_id=owner.pk) == 0
    assert statuses(owner) == {
        "a": ("suspended", "unverified"),
        "b": ("suspended", "unverified"),
        "failed": ("failed", ""),
        "billing": ("suspended", "billing"),
    }
    other.refresh_from_db()
    assert other.status == TenantStatus.ACTIVE


def test_a_verified_owner_is_never_suspended_nor_deleted(owner):
    owner.email_verified_at = timezone.now()
    owner.save()
    assert tenants_suspend_unverified(owner_id=owner.pk) == 0
    assert tenants_delete_unverified(owner_id=owner.pk) == 0
    assert statuses(owner)["a"] == ("active", "")


def test_verifying_reactivates_only_what_the_verification_suspended(owner):
    tenants_suspend_unverified(owner_id=owner.pk)
    assert tenants_reactivate_verified(owner_id=owner.pk) == 0  # still unverified
    owner.email_verified_at = timezone.now()
    owner.save()
    assert tenants_reactivate_verified(owner_id=owner.pk) == 2
    assert statuses(owner) == {
        "a": ("active", ""),
        "b": ("active", ""),
        "failed": ("failed", ""),
        "billing": ("suspended", "billing"),
    }


def test_deletion_takes_the_unverified_ones_and_leaves_an_operators_suspension(owner):
    tenants_suspend_unverified(owner_id=owner.pk)
    before = OutboxEntry.objects.count()
    assert tenants_delete_unverified(owner_id=owner.pk) == 2
    assert tenants_delete_unverified(owner_id=owner.pk) == 0
    found = statuses(owner)
    assert found["billing"] == ("suspended", "billing")
    assert found["failed"] == ("failed", "")
    assert {found["a"][0], found["b"][0]} != {"suspended"}
    assert OutboxEntry.objects.count() > before  # the deletions are on their way
