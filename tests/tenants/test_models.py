import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.db.models import ProtectedError
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tenants.models import ALLOWED_TRANSITIONS, InvalidTransition, Tenant, TenantStatus
from tenants.services import tenant_create, tenant_set_status
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_new_tenant_is_pending_with_schema_from_its_id(owner):
    tenant = tenant_create(name="Acme", subdomain="acme", owner=owner)
    assert tenant.status == TenantStatus.PENDING
    assert tenant.schema_name == f"t_{tenant.pk.hex}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [tenant.schema_name])
        assert cursor.fetchone() is None, "save() must not create the schema"


# Suspension moves go through tenant_suspend / tenant_reactivate only
# (tests/tenants/test_suspension.py), a scheduled deletion's through tenant_schedule_deletion
# / tenant_restore / the purge (tests/tenants/test_deletion_grace.py).
AWAY = {TenantStatus.SUSPENDED, TenantStatus.DELETION_SCHEDULED}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (c, t)
        for c in TenantStatus.values
        for t in TenantStatus.values
        if c != t and not AWAY & {c, t}
    ],
)
def test_status_transitions_follow_the_table(owner, current, target):
    tenant = TenantFactory(owner=owner, status=current)
    if target in ALLOWED_TRANSITIONS[current]:
        tenant = tenant_set_status(tenant_id=tenant.pk, status=target, error="boom")
        assert Tenant.objects.get(pk=tenant.pk).status == target
    else:
        with pytest.raises(InvalidTransition, match=f"from '{current}' to '{target}'"):
            tenant_set_status(tenant_id=tenant.pk, status=target)
        assert Tenant.objects.get(pk=tenant.pk).status == current


def test_lifecycle_timestamps_and_error(owner):
    tenant = TenantFactory(owner=owner)
    tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.PROVISIONING)
    failed = tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.FAILED, error="disk full")
    assert failed.last_error == "disk full"
    retry = tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.PROVISIONING)
    assert retry.last_error == ""
    active = tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.ACTIVE)
    assert active.provisioned_at is not None
    tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.DELETING)
    deleted = tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.DELETED)
    assert deleted.deleted_at is not None


def test_setting_the_same_status_again_is_a_no_op(owner):
    tenant = TenantFactory(owner=owner, status=TenantStatus.ACTIVE)
    again = tenant_set_status(tenant_id=tenant.pk, status=TenantStatus.ACTIVE)
    assert again.status == TenantStatus.ACTIVE


def test_schema_name_unique_case_insensitively(owner):
    first = TenantFactory(owner=owner)
    second = TenantFactory(owner=owner)
    second.schema_name = first.schema_name.upper().replace("T_", "t_")
    with pytest.raises(IntegrityError, match="tenant_schema_name_ci_unique"):
        second.save()


def test_subdomain_taken_in_any_case_is_a_field_error(owner):
    TenantFactory(owner=owner, subdomain="acme")
    with pytest.raises(ValidationError) as exc:
        tenant_create(name="Other", subdomain="acme", owner=owner)
    assert exc.value.message_dict == {"subdomain": ["This subdomain is taken."]}
    # Bypassing validation, the database still refuses another letter case.
    with pytest.raises(IntegrityError, match="tenant_subdomain_ci_unique"):
        Tenant.objects.create(name="Other", subdomain="ACME", owner=owner)


@pytest.mark.parametrize(
    "subdomain",
    [
        'acme"',
        "acme;",
        'x"; CREATE TABLE public.pwned(i int); --',
        "Acme",
        "ACME",
        "pg_acme",
        "pg-acme",
        "public",
        "www",
        "a" * 64,
        "",
        "-acme",
        "acme-",
        "ac me",
        "ac_me",
        "acme.evil",
        "xn--80ak6aa92e",
    ],
)
def test_hostile_or_reserved_subdomain_rejected_before_any_sql(owner, subdomain):
    with CaptureQueriesContext(connection) as queries, pytest.raises(ValidationError) as exc:
        tenant_create(name="Acme", subdomain=subdomain, owner=owner)
    assert "subdomain" in exc.value.message_dict
    assert queries.captured_queries == []
    assert not Tenant.objects.exists()


def test_longest_valid_subdomain_accepted(owner):
    tenant = tenant_create(name="Acme", subdomain="a" * 63, owner=owner)
    assert tenant.subdomain == "a" * 63


def test_deleting_a_user_who_owns_a_tenant_is_refused(owner):
    TenantFactory(owner=owner)
    with pytest.raises(ProtectedError):
        owner.delete()
    assert User.objects.filter(pk=owner.pk).exists()
    assert Tenant.objects.count() == 1
