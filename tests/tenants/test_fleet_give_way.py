"""A fleet run gives way to signups: before each schema it waits while a tenant is being
provisioned (``tenants.fleet.fleet_give_way``)."""

import threading
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from tenants.fleet import fleet_give_way
from tenants.models import Tenant, TenantStatus
from tests.factories import TenantFactory


def test_with_no_signup_under_way_the_fleet_does_not_wait(db, owner):
    TenantFactory(owner=owner, status=TenantStatus.ACTIVE)
    assert fleet_give_way(wait=5) < 1.0


def test_a_signup_under_way_holds_the_fleet_up_to_the_limit(db, owner):
    for status in (TenantStatus.PENDING, TenantStatus.PROVISIONING):
        tenant = TenantFactory(owner=owner, status=status)
        assert fleet_give_way(wait=0.3) >= 0.3
        tenant.delete()


def test_a_provisioning_stuck_for_long_is_not_waited_for(db, owner):
    tenant = TenantFactory(owner=owner, status=TenantStatus.PROVISIONING)
    Tenant.objects.filter(pk=tenant.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert fleet_give_way(wait=5) < 1.0


def test_the_fleet_goes_on_as_soon_as_the_signup_is_active(transactional_db, owner, settings):
    settings.FLEET_MIGRATION_GIVE_WAY = 30
    tenant = TenantFactory(owner=owner, status=TenantStatus.PROVISIONING)
    def activate() -> None:
        try:
            Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.ACTIVE)
        finally:
            connection.close()  # this thread's own

    timer = threading.Timer(0.3, activate)
    timer.start()
    try:
        waited = fleet_give_way()
    finally:
        timer.join()
    assert 0.3 <= waited < 10
