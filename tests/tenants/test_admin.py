"""The tenant admin: actions through services -> signals -> outbox, per-tenant reports, the
delete confirmation, and the change page's run link and live progress."""

import re
import socket
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import Token, User
from core.temporal_ui import workflow_ui_url
from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import (
    TenantDeletionWorkflow,
    TenantProvisioningWorkflow,
)
from orchestration.workflows.tenant_provisioning import PROVISIONING
from tenants.models import Domain, Membership, Role, Tenant, TenantStatus
from tenants.services import tenant_request_provisioning, tenant_step_done, tenant_step_started
from tests.factories import MembershipFactory, TenantFactory, TokenFactory, UserFactory

TENANT_PROVISIONING = workflow_type(TenantProvisioningWorkflow)
TENANT_DELETION = workflow_type(TenantDeletionWorkflow)

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/tenants/tenant/"
PUBLIC = "config.urls_public"
HOST = {"HTTP_HOST": "localhost"}


def staff(*codenames: str) -> User:
    user = UserFactory(email="staff@example.com", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def run_action(client, action, tenants, **extra):
    data = {"action": action, "_selected_action": [str(t.pk) for t in tenants], **extra}
    return client.post(CHANGELIST, data, follow=True, **HOST)


def texts(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def offered_actions(client) -> list[str]:
    page = client.get(CHANGELIST, **HOST)
    assert page.status_code == 200
    return [value for value, _ in page.context["action_form"].fields["action"].choices if value]


def change_page(client, tenant) -> str:
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk], urlconf=PUBLIC)
    page = client.get(url, **HOST)
    assert page.status_code == 200
    return page.content.decode()


def status_of(tenant) -> str:
    return Tenant.objects.get(pk=tenant.pk).status


# --- provision and retry --------------------------------------------------------------------


def test_provision_queues_pending_and_reports_skipped_with_reasons(admin_client, owner):
    pending = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.PENDING)
    active = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.ACTIVE)
    failed = TenantFactory(owner=owner, subdomain="charlie", status=TenantStatus.FAILED)
    response = run_action(admin_client, "provision", [pending, active, failed])
    assert response.status_code == 200
    assert texts(response) == [
        "Skipped Bravo (bravo): it is active; only pending tenants can be provisioned.",
        "Skipped Charlie (charlie): it is failed; only pending tenants can be provisioned.",
        "1 queued for provisioning: Alpha (alpha).",
    ]
    rows = list(OutboxEntry.objects.values_list("workflow_type", "workflow_id"))
    assert rows == [(TENANT_PROVISIONING, f"tenant-provision-{pending.pk}")]
    assert Tenant.objects.get(pk=failed.pk).provisioning_attempt == 1  # not retried


def test_retry_moves_failed_to_provisioning_with_a_new_attempt(admin_client, owner):
    failed = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.FAILED)
    pending = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.PENDING)
    response = run_action(admin_client, "retry_provisioning", [failed, pending])
    failed.refresh_from_db()
    assert failed.status == TenantStatus.PROVISIONING
    assert failed.provisioning_attempt == 2
    assert OutboxEntry.objects.get().workflow_id == f"tenant-provision-{failed.pk}-attempt-2"
    assert texts(response) == [
        "Skipped Bravo (bravo): it is pending; only failed tenants can be retried.",
        "1 queued for another provisioning attempt: Alpha (alpha).",
    ]
    assert status_of(pending) == TenantStatus.PENDING


# --- deletion -------------------------------------------------------------------------------


def test_stock_bulk_delete_and_object_delete_are_gone(admin_client, owner):
    tenant = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.ACTIVE)
    actions = offered_actions(admin_client)
    assert "delete_selected" not in actions
    assert "delete_tenants" in actions  # a superuser has the delete permission

    forged = run_action(admin_client, "delete_selected", [tenant], post="yes")
    assert "No action selected." in texts(forged)
    delete_url = reverse("admin:tenants_tenant_delete", args=[tenant.pk], urlconf=PUBLIC)
    assert admin_client.get(delete_url, **HOST).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}, **HOST).status_code == 403
    assert "/delete/" not in change_page(admin_client, tenant)  # no delete link either
    assert status_of(tenant) == TenantStatus.ACTIVE
    assert not OutboxEntry.objects.exists()


def test_delete_needs_the_delete_permission(client, owner):
    tenant = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.ACTIVE)
    client.force_login(staff("view_tenant", "change_tenant"))
    actions = offered_actions(client)
    assert "provision" in actions
    assert "delete_tenants" not in actions

    for extra in ({"confirm": "yes"}, {}):  # the confirmed POST and the first step
        forged = run_action(client, "delete_tenants", [tenant], **extra)
        assert forged.status_code == 403
    assert not OutboxEntry.objects.exists()
    assert status_of(tenant) == TenantStatus.ACTIVE


def plan_row(page: str, tenant) -> dict[str, str]:
    row = re.search(rf'<tr data-tenant="{tenant.pk}">(.*?)</tr>', page, re.S)
    assert row, f"{tenant} is not in the delete plan"
    cells = re.findall(r'<td class="(\w+)">(.*?)</td>', row.group(1), re.S)
    return {name: re.sub(r"<[^>]+>", "", value).strip() for name, value in cells}


def test_delete_shows_what_will_be_dropped_then_queues_on_confirm(client, owner):
    alpha = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.ACTIVE)
    Domain.objects.create(tenant=alpha, domain="alpha.localhost", is_primary=True)
    Domain.objects.create(tenant=alpha, domain="alpha.example.org", is_primary=False)
    members = UserFactory.create_batch(3)
    MembershipFactory(user=owner, tenant=alpha, role=Role.OWNER)
    MembershipFactory(user=members[0], tenant=alpha)
    MembershipFactory(user=members[1], tenant=alpha, is_active=False)
    tokens = TokenFactory.create_batch(5, user=owner, ttl=timedelta(days=1))
    Token.objects.filter(pk=tokens[0].pk).update(used_at=timezone.now())
    Token.objects.filter(pk=tokens[1].pk).update(revoked_at=timezone.now())
    # No domain, member or token:
    bravo = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.FAILED)
    busy = TenantFactory(owner=owner, subdomain="charlie", status=TenantStatus.PROVISIONING)
    client.force_login(staff("view_tenant", "change_tenant", "delete_tenant"))
    assert "delete_tenants" in offered_actions(client)

    confirm = client.post(
        CHANGELIST,
        {"action": "delete_tenants", "_selected_action": [str(t.pk) for t in (alpha, bravo, busy)]},
        **HOST,
    )
    assert confirm.status_code == 200
    assert confirm.templates[0].name == ("admin/tenants/tenant/delete_confirmation_workflow.html")
    page = confirm.content.decode()
    assert plan_row(page, alpha) == {
        "schema": alpha.schema_name,
        "domains": "alpha.localhost, alpha.example.org",
        "memberships": "2",  # owner and one member; the inactive one is not counted
    }
    assert plan_row(page, bravo) == {
        "schema": bravo.schema_name,
        "domains": "none",
        "memberships": "0",
    }
    assert f'data-tenant="{busy.pk}"' not in page
    assert "Charlie (charlie, provisioning)" in page  # listed as skipped, with its status
    for tenant in (alpha, bravo, busy):  # the confirmation carries exactly the selection
        assert f'name="_selected_action" value="{tenant.pk}"' in page
    assert 'name="select_across" value="0"' in page
    assert not OutboxEntry.objects.exists()  # nothing until confirmed
    assert {status_of(alpha), status_of(bravo)} == {TenantStatus.ACTIVE, TenantStatus.FAILED}

    done = run_action(client, "delete_tenants", [alpha, bravo, busy], confirm="yes")
    assert texts(done) == [
        "Skipped Charlie (charlie): it is provisioning; "
        "only active, deleting, deletion_scheduled, failed, pending or suspended tenants "
        "can be deleted.",
        "2 queued for deletion: Alpha (alpha), Bravo (bravo).",
    ]
    assert status_of(alpha) == status_of(bravo) == TenantStatus.DELETING
    assert status_of(busy) == TenantStatus.PROVISIONING
    rows = set(OutboxEntry.objects.values_list("workflow_type", "workflow_id"))
    assert rows == {(TENANT_DELETION, f"tenant-delete-{t.pk}") for t in (alpha, bravo)}
    # Revoking access and dropping the schema are the workflow's job, not the admin's.
    assert Membership.objects.filter(tenant=alpha, is_active=True).count() == 2
    assert Domain.objects.filter(tenant=alpha).count() == 2


def test_delete_with_nothing_deletable_says_why_without_a_confirmation(admin_client, owner):
    busy = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.DELETED)
    response = run_action(admin_client, "delete_tenants", [busy])
    assert response.redirect_chain, "no confirmation page, back to the list"
    assert response.redirect_chain[-1][0].startswith(CHANGELIST)
    assert texts(response) == [
        "Skipped Alpha (alpha): it is deleted; "
        "only active, deleting, deletion_scheduled, failed, pending or suspended tenants "
        "can be deleted."
    ]
    assert not OutboxEntry.objects.exists()


# --- the change page: run link and progress ------------------------------------------------


def test_changelist_and_change_page_never_talk_to_temporal(admin_client, owner, settings):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        settings.TEMPORAL_ADDRESS = f"127.0.0.1:{sock.getsockname()[1]}"
    tenant = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.PENDING)
    tenant_request_provisioning(tenant_id=tenant.pk)
    started = time.monotonic()
    page = admin_client.get(CHANGELIST, **HOST)
    assert page.status_code == 200
    assert "Alpha" in page.content.decode()
    body = change_page(admin_client, tenant)
    assert time.monotonic() - started < 2
    assert f"queued: 0 of {len(PROVISIONING.steps)} steps done (none); now: —" in body


def test_workflow_ui_url_is_the_temporal_ui_workflow_page(settings):
    settings.TEMPORAL_UI_URL = "https://temporal.example.org"
    settings.TEMPORAL_NAMESPACE = "prod ns"
    assert workflow_ui_url("tenant-provision-1/x") == (
        "https://temporal.example.org/namespaces/prod%20ns/workflows/tenant-provision-1%2Fx"
    )


def test_change_page_links_the_run_of_the_current_attempt(admin_client, owner):
    tenant = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.PENDING)
    tenant_request_provisioning(tenant_id=tenant.pk)
    workflow_id = f"tenant-provision-{tenant.pk}"
    body = change_page(admin_client, tenant)
    assert f"<code>{workflow_id}</code>" in body
    assert f'href="http://localhost:8233/namespaces/default/workflows/{workflow_id}"' in body

    Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.FAILED)
    tenant_request_provisioning(tenant_id=tenant.pk)  # a retry: attempt 2
    assert f"/workflows/{workflow_id}-attempt-2" in change_page(admin_client, tenant)


def test_change_page_shows_the_progress_the_activities_recorded(admin_client, owner):
    tenant = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.PENDING)
    tenant_request_provisioning(tenant_id=tenant.pk)
    workflow_id = f"tenant-provision-{tenant.pk}"
    for step in ("mark_provisioning", "create_schema"):
        tenant_step_started(tenant_id=tenant.pk, workflow_id=workflow_id, step=step)
        tenant_step_done(tenant_id=tenant.pk, workflow_id=workflow_id, step=step)
    tenant_step_started(tenant_id=tenant.pk, workflow_id=workflow_id, step="migrate_schema")
    body = change_page(admin_client, tenant)
    assert (
        f"running: 2 of {len(PROVISIONING.steps)} steps done (mark_provisioning, create_schema);"
        " now: migrate_schema"
    ) in body


def test_a_stalled_deletion_can_be_queued_again(admin_client, owner):
    """A deletion whose workflow gave up leaves the tenant ``deleting``: Delete re-queues it
    (same workflow id, so a run still going is not doubled)."""
    stalled = TenantFactory(owner=owner, subdomain="alpha", status=TenantStatus.DELETING)
    done = run_action(admin_client, "delete_tenants", [stalled], confirm="yes")
    assert texts(done) == ["1 queued for deletion: Alpha (alpha)."]
    assert set(OutboxEntry.objects.values_list("workflow_type", "workflow_id")) == {
        (TENANT_DELETION, f"tenant-delete-{stalled.pk}")
    }


def change_form_post(client, tenant, remove: set[str]):
    """The tenant's change form posted as the browser would, with the remove box of each
    domain in ``remove`` ticked (forged where the form shows none)."""
    domains = list(Domain.objects.filter(tenant=tenant).order_by("pk"))
    data = {
        "name": tenant.name,
        "domains-TOTAL_FORMS": str(len(domains)),
        "domains-INITIAL_FORMS": str(len(domains)),
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
        "_continue": "Save",
    }
    for n, domain in enumerate(domains):
        data[f"domains-{n}-id"] = str(domain.pk)
        data[f"domains-{n}-tenant"] = str(tenant.pk)
        if domain.domain in remove:
            data[f"domains-{n}-DELETE"] = "on"
    url = f"{CHANGELIST}{tenant.pk}/change/"
    return client.post(url, data, follow=True, **HOST)


def test_only_an_active_tenants_custom_domains_are_removed_from_its_page(client, acme):
    from tenants.services.domains import custom_domain_add, tenant_change_subdomain

    tenant_change_subdomain(tenant_id=acme.pk, subdomain="acme-labs")
    custom_domain_add(tenant_id=acme.pk, domain="shop.example.org")
    custom_domain_add(tenant_id=acme.pk, domain="blog.example.org")
    client.force_login(staff("view_tenant", "change_tenant"))
    everything = {"acme.localhost", "acme-labs.localhost", "shop.example.org"}
    done = change_form_post(client, acme, remove=everything)
    assert "Removed custom domain shop.example.org of Acme (acme-labs)." in texts(done)
    assert set(Domain.objects.filter(tenant=acme).values_list("domain", flat=True)) == {
        "acme.localhost",  # a forged "remove" of the primary or a previous host is ignored
        "acme-labs.localhost",
        "blog.example.org",
    }
    Tenant.objects.filter(pk=acme.pk).update(
        status=TenantStatus.SUSPENDED, suspension_reason="billing"
    )
    refused = change_form_post(client, Tenant.objects.get(pk=acme.pk), remove={"blog.example.org"})
    assert (
        "Skipped Acme (acme-labs): it is suspended; only an active tenant's custom domains "
        "can be removed (blog.example.org kept)."
    ) in texts(refused)
    assert Domain.objects.filter(domain="blog.example.org").exists()
