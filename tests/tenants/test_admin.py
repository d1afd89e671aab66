"""The tenant admin: actions through services -> signals -> outbox, per-tenant reports."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import Membership, Role, TokenPurpose, User
from accounts.services import membership_create, token_issue
from orchestration.models import OutboxEntry
from orchestration.receivers import TENANT_DELETION, TENANT_PROVISIONING
from tenants.models import Domain, Tenant, TenantStatus
from tenants.services import tenant_create

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/tenants/tenant/"
PUBLIC = "config.urls_public"


@pytest.fixture
def owner():
    return User.objects.create_user("owner@example.com", "a long passphrase 123")


def tenant_in(owner, subdomain, status):
    tenant = tenant_create(name=subdomain.title(), subdomain=subdomain, owner=owner)
    Tenant.objects.filter(pk=tenant.pk).update(status=status)
    return Tenant.objects.get(pk=tenant.pk)


def staff(*perms: str) -> User:
    user = User.objects.create_user("staff@example.com", "a long passphrase 123", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def run_action(client, action, tenants, **extra):
    data = {"action": action, "_selected_action": [str(t.pk) for t in tenants], **extra}
    return client.post(CHANGELIST, data, HTTP_HOST="localhost", follow=True)


def texts(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_provision_queues_pending_and_reports_skipped_with_reasons(admin_client, owner):
    pending = tenant_in(owner, "alpha", TenantStatus.PENDING)
    active = tenant_in(owner, "bravo", TenantStatus.ACTIVE)
    response = run_action(admin_client, "provision", [pending, active])
    assert response.status_code == 200
    assert texts(response) == [
        "Skipped Bravo (bravo): it is active; only pending tenants can be provisioned.",
        "1 queued for provisioning: Alpha (alpha).",
    ]
    rows = list(OutboxEntry.objects.values_list("workflow_type", "workflow_id"))
    assert rows == [(TENANT_PROVISIONING, f"tenant-provision-{pending.pk}")]


def test_retry_moves_failed_to_provisioning_with_a_new_attempt(admin_client, owner):
    failed = tenant_in(owner, "alpha", TenantStatus.FAILED)
    pending = tenant_in(owner, "bravo", TenantStatus.PENDING)
    response = run_action(admin_client, "retry_provisioning", [failed, pending])
    failed.refresh_from_db()
    assert failed.status == TenantStatus.PROVISIONING
    assert failed.provisioning_attempt == 2
    assert OutboxEntry.objects.get().workflow_id == f"tenant-provision-{failed.pk}-attempt-2"
    assert "Skipped Bravo (bravo): it is pending; only failed tenants can be retried." in texts(
        response
    )


def test_stock_bulk_delete_and_object_delete_are_gone(admin_client, owner):
    tenant = tenant_in(owner, "alpha", TenantStatus.ACTIVE)
    page = admin_client.get(CHANGELIST, HTTP_HOST="localhost")
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "delete_tenants" in actions
    delete_url = reverse("admin:tenants_tenant_delete", args=[tenant.pk], urlconf=PUBLIC)
    assert admin_client.get(delete_url, HTTP_HOST="localhost").status_code == 403
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE


def test_delete_needs_the_delete_permission(client, owner):
    tenant = tenant_in(owner, "alpha", TenantStatus.ACTIVE)
    client.force_login(staff("view_tenant", "change_tenant"))
    page = client.get(CHANGELIST, HTTP_HOST="localhost")
    actions = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "delete_tenants" not in actions
    assert "provision" in actions
    forged = run_action(client, "delete_tenants", [tenant], confirm="yes")
    assert forged.status_code == 200
    assert "No action selected." in texts(forged)
    assert not OutboxEntry.objects.exists()
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE


def test_delete_shows_what_will_be_dropped_then_queues_on_confirm(client, owner):
    tenant = tenant_in(owner, "alpha", TenantStatus.ACTIVE)
    Domain.objects.create(tenant=tenant, domain="alpha.localhost", is_primary=True)
    membership_create(user=owner, tenant=tenant, role=Role.OWNER)
    from datetime import timedelta

    token_issue(user=owner, purpose=TokenPurpose.API, ttl=timedelta(days=1), tenant=tenant)
    deleting = tenant_in(owner, "bravo", TenantStatus.PROVISIONING)
    client.force_login(staff("view_tenant", "change_tenant", "delete_tenant"))

    confirm = client.post(
        CHANGELIST,
        {"action": "delete_tenants", "_selected_action": [str(tenant.pk)]},
        HTTP_HOST="localhost",
    )
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert tenant.schema_name in page
    assert "alpha.localhost" in page
    assert "<td>1</td>" in page  # one active membership, one unused token
    assert not OutboxEntry.objects.exists()  # nothing until confirmed
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE

    done = run_action(client, "delete_tenants", [tenant, deleting], confirm="yes")
    assert "1 queued for deletion: Alpha (alpha)." in texts(done)
    assert any(t.startswith("Skipped Bravo (bravo): it is provisioning") for t in texts(done))
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.DELETING
    assert OutboxEntry.objects.get().workflow_type == TENANT_DELETION
    assert (
        Membership.objects.filter(tenant=tenant, is_active=True).count() == 1
    )  # the workflow's job


def test_change_page_links_the_run_and_reads_progress_gracefully(admin_client, owner, temporal):
    tenant = tenant_in(owner, "alpha", TenantStatus.PENDING)
    page = admin_client.get(
        reverse("admin:tenants_tenant_change", args=[tenant.pk], urlconf=PUBLIC),
        HTTP_HOST="localhost",
    )
    assert page.status_code == 200
    body = page.content.decode()
    workflow_id = f"tenant-provision-{tenant.pk}"
    assert f"/namespaces/default/workflows/{workflow_id}" in body
    assert "progress unavailable" in body  # no run started yet; never a 500
