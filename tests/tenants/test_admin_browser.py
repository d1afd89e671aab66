"""The tenant admin in a real browser (Debian's headless Chromium driven by Playwright)."""

import contextlib
import re

import pytest

from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import (
    TenantDeletionWorkflow,
    TenantProvisioningWorkflow,
)
from tenants.models import Tenant, TenantStatus
from tests.factories import PASSWORD, TenantFactory, UserFactory

TENANT_PROVISIONING = workflow_type(TenantProvisioningWorkflow)
TENANT_DELETION = workflow_type(TenantDeletionWorkflow)

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextlib.contextmanager
def admin_page(live_server, chromium_path, *, then: str, timeout: int = 15_000):
    """A headless browser's page, logged in to the admin as ``root@example.com`` (a
    superuser the test made) and sent on to ``then``; yields ``(page, base_url)``."""
    from playwright.sync_api import sync_playwright

    # "localhost" is a public host (PUBLIC_HOSTS); 127.0.0.1 is too, but say it by name.
    base = live_server.url.replace("127.0.0.1", "localhost")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout)
            page.goto(f"{base}/admin/login/?next={then}")
            page.fill("input[name=username]", "root@example.com")
            page.fill("input[name=password]", PASSWORD)
            page.click("input[type=submit], button[type=submit]")
            yield page, base
        finally:
            browser.close()


# live_server serves from another thread: the data must be committed to be seen there.
@pytest.mark.django_db(transaction=True)
def test_provision_and_delete_from_the_admin(live_server, chromium_path, tmp_path):
    from playwright.sync_api import expect

    UserFactory(email="root@example.com", superuser=True)
    owner = UserFactory(email="owner@example.com")
    pending = TenantFactory(owner=owner, subdomain="alpha")
    active = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.ACTIVE)

    with admin_page(live_server, chromium_path, then="/admin/tenants/tenant/") as (page, _):
        expect(page).to_have_url(re.compile(r"/admin/tenants/tenant/$"))

        page.check(f"input[name=_selected_action][value='{pending.pk}']")
        page.select_option("select[name=action]", "provision")
        page.click("button[name=index]")
        expect(page.locator("ul.messagelist")).to_contain_text(
            "1 queued for provisioning: Alpha (alpha)."
        )

        page.check(f"input[name=_selected_action][value='{active.pk}']")
        page.select_option("select[name=action]", "delete_tenants")
        page.click("button[name=index]")
        plan = page.locator(f"#delete-plan tr[data-tenant='{active.pk}']")
        expect(plan).to_contain_text(active.schema_name)
        expect(plan).to_contain_text("Bravo (bravo)")
        page.click("input[type=submit][value='Yes, delete these tenants']")
        expect(page.locator("ul.messagelist")).to_contain_text(
            "1 queued for deletion: Bravo (bravo)."
        )
        page.screenshot(path=str(tmp_path / "tenant-admin.png"), full_page=True)

    assert Tenant.objects.get(pk=active.pk).status == TenantStatus.DELETING
    rows = set(OutboxEntry.objects.values_list("workflow_type", "workflow_id"))
    assert rows == {
        (TENANT_PROVISIONING, f"tenant-provision-{pending.pk}"),
        (TENANT_DELETION, f"tenant-delete-{active.pk}"),
    }


@pytest.mark.django_db(transaction=True)
def test_custom_domains_are_shown_looked_up_and_removed_from_the_admin(
    live_server, chromium_path, tmp_path, dns_server
):
    from playwright.sync_api import expect

    from tenants.models import Domain
    from tenants.services.domains import (
        custom_domain_add,
        domain_create_primary,
        tenant_change_subdomain,
        txt_record_name,
    )

    UserFactory(email="root@example.com", superuser=True)
    owner = UserFactory(email="owner@example.com")
    tenant = TenantFactory(owner=owner, subdomain="charlie", status=TenantStatus.ACTIVE)
    idle = TenantFactory(owner=owner, subdomain="delta", status=TenantStatus.ACTIVE)
    domain_create_primary(tenant_id=tenant.pk)
    tenant_change_subdomain(tenant_id=tenant.pk, subdomain="charlie-labs")
    shop = custom_domain_add(tenant_id=tenant.pk, domain="shop.example.org")
    blog = custom_domain_add(tenant_id=tenant.pk, domain="blog.example.org")
    dns_server.set_txt(txt_record_name(shop.domain), shop.token)
    with admin_page(live_server, chromium_path, then="/admin/tenants/tenant/") as (page, base):
        for selected in (tenant, idle):
            page.check(f"input[name=_selected_action][value='{selected.pk}']")
        page.select_option("select[name=action]", "recheck_domains")
        page.click("button[name=index]")
        messages = page.locator("ul.messagelist")
        expect(messages).to_contain_text(
            "Looked up the custom domains of Charlie (charlie-labs): "
            "blog.example.org pending, shop.example.org verified."
        )
        expect(messages).to_contain_text("Skipped Delta (delta): it has no custom domains.")

        page.goto(f"{base}/admin/tenants/tenant/{tenant.pk}/change/")
        rows = page.locator("#domains-group tbody tr.form-row")
        expect(rows).to_have_count(4)
        expect(page.locator("#domains-group")).to_contain_text("charlie.localhost")
        expect(page.locator("#domains-group")).to_contain_text("Previous")
        expect(page.locator("#domains-group")).to_contain_text("Pending verification")
        expect(page.locator("#domains-group")).to_contain_text(blog.token)
        # Only the custom domains can be removed.
        expect(page.locator("#domains-group input[type=checkbox][name$='-DELETE']")).to_have_count(
            2
        )
        blog_row = page.locator("#domains-group tr.form-row", has_text="blog.example.org")
        blog_row.locator("input[name$='-DELETE']").check()
        page.click("input[name=_continue]")
        expect(page.locator("ul.messagelist")).to_contain_text(
            "Removed custom domain blog.example.org of Charlie (charlie-labs)."
        )
        page.screenshot(path=str(tmp_path / "tenant-domains.png"), full_page=True)

    assert set(Domain.objects.filter(tenant=tenant).values_list("domain", "kind", "status")) == {
        ("charlie-labs.localhost", "primary", ""),
        ("charlie.localhost", "previous", ""),
        ("shop.example.org", "custom", "verified"),
    }


def test_tokens_show_their_last_use_and_email_changes_are_listed(
    live_server, chromium_path, tmp_path
):
    from playwright.sync_api import expect
    from rest_framework.test import APIClient

    from accounts.services.email_change import email_change_request
    from tests.factories import TokenFactory

    UserFactory(email="root@example.com", superuser=True)
    ada = UserFactory(email="ada@example.com")
    used, idle = TokenFactory(user=ada), TokenFactory(user=ada)
    api = APIClient(HTTP_HOST="localhost")
    assert api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {used.raw}").status_code == 200
    email_change_request(user=ada, new_email="ada.new@example.com")
    with admin_page(live_server, chromium_path, then="/admin/accounts/token/") as (page, base):
        expect(page).to_have_url(re.compile(r"/admin/accounts/token/$"))
        expect(page.locator("th.column-last_used_at")).to_contain_text("Last used at")
        used_row = page.locator("#result_list tr", has_text=used.prefix)
        idle_row = page.locator("#result_list tr", has_text=idle.prefix)
        expect(used_row.locator("td.field-last_used_at")).not_to_have_text("-")
        expect(idle_row.locator("td.field-last_used_at")).to_have_text("-")
        page.goto(f"{base}/admin/accounts/emailchange/")
        row = page.locator("#result_list tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("ada.new@example.com")
        expect(page.locator(".object-tools a.addlink")).to_have_count(0)  # read-only
        page.screenshot(path=str(tmp_path / "token-admin.png"), full_page=True)


def test_schedule_restore_and_purge_now_from_the_admin(live_server, chromium_path, tmp_path):
    """A scheduled deletion on the tenant's own page: what will happen when, and the actions
    that cancel it (Restore) or act now (Purge now), from that page."""
    from playwright.sync_api import expect

    UserFactory(email="root@example.com", superuser=True)
    owner = UserFactory(email="owner@example.com")
    tenant = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.ACTIVE)
    form_action = "select[name='CHANGE_FORM-action']"

    with admin_page(live_server, chromium_path, then="/admin/tenants/tenant/") as (page, base):
        expect(page).to_have_url(re.compile(r"/admin/tenants/tenant/$"))

        page.check(f"input[name=_selected_action][value='{tenant.pk}']")
        page.select_option("select[name=action]", "schedule_deletion")
        page.click("button[name=index]")
        expect(page.locator("ul.messagelist")).to_contain_text(
            "1 scheduled for deletion: Bravo (bravo)."
        )
        expect(page.locator("#result_list")).to_contain_text("Deletion scheduled")

        page.goto(f"{base}/admin/tenants/tenant/{tenant.pk}/change/")
        plan = page.locator("#scheduled-deletion")
        expect(plan).to_contain_text("Reminder: due")
        expect(plan).to_contain_text("Purge:")
        expect(plan).to_contain_text(f"tenant-deletion-grace-{tenant.pk}-1")
        page.screenshot(path=str(tmp_path / "scheduled-deletion.png"), full_page=True)
        page.select_option(form_action, "restore")
        page.click(".actions button[name=index]")
        expect(page.locator("ul.messagelist")).to_contain_text("1 restored: Bravo (bravo).")
        expect(page.locator("#scheduled-deletion")).to_have_count(0)

        page.select_option(form_action, "schedule_deletion")
        page.click(".actions button[name=index]")
        expect(page.locator("#scheduled-deletion")).to_contain_text(
            f"tenant-deletion-grace-{tenant.pk}-2"
        )
        page.select_option(form_action, "delete_tenants")
        page.click(".actions button[name=index]")
        expect(page.locator(f"#delete-plan tr[data-tenant='{tenant.pk}']")).to_contain_text(
            "Deletion scheduled"
        )
        page.click("input[type=submit][value='Yes, delete these tenants']")
        expect(page.locator("ul.messagelist")).to_contain_text(
            "1 queued for deletion: Bravo (bravo)."
        )

    row = Tenant.objects.get(pk=tenant.pk)
    assert (row.status, row.purge_at, row.deletion_scheduling) == (TenantStatus.DELETING, None, 2)
    assert OutboxEntry.objects.filter(workflow_type=TENANT_DELETION).count() == 1


@pytest.mark.django_db(transaction=True)
def test_members_and_invitations_inline_with_resend_and_revoke(
    live_server, chromium_path, tmp_path
):
    from playwright.sync_api import expect

    from accounts.models import EmailQuota
    from orchestration.models import OutboxKind
    from tenants.models import Invitation, InvitationStatus, Role
    from tenants.services.people import invitation_create
    from tests.factories import MembershipFactory

    UserFactory(email="root@example.com", superuser=True)
    owner = UserFactory(email="owner@example.com")
    tenant = TenantFactory(owner=owner, subdomain="crew", status=TenantStatus.ACTIVE)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    MembershipFactory(user__email="mate@example.com", tenant=tenant, role=Role.MEMBER)
    kept = invitation_create(tenant_id=tenant.pk, actor=owner, email="kept@example.com")
    dropped = invitation_create(tenant_id=tenant.pk, actor=owner, email="dropped@example.com")
    EmailQuota.objects.update(sent_at=[])  # the invitations' own emails, long ago
    change = f"/admin/tenants/tenant/{tenant.pk}/change/"

    with admin_page(live_server, chromium_path, then=change) as (page, _):

        def button(invitation, action):
            row = page.locator("tr", has_text=invitation.email)
            return row.locator(f"button[data-invitation-action='{action}']")

        expect(page.locator("#memberships-group")).to_contain_text("owner@example.com")
        expect(page.locator("#memberships-group")).to_contain_text("mate@example.com")
        expect(page.locator("#invitations-group")).to_contain_text("kept@example.com")

        button(kept, "resend").click()
        expect(page.locator("ul.messagelist")).to_contain_text(
            "The invitation of kept@example.com to Crew (crew) was sent again."
        )
        # Again at once: the address's cool-down refuses it, and the message says why.
        button(kept, "resend").click()
        expect(page.locator("ul.messagelist")).to_contain_text(
            "The invitation of kept@example.com to Crew (crew) was not resent: one such "
            "email went to this address less than"
        )
        button(dropped, "revoke").click()
        expect(page.locator("ul.messagelist")).to_contain_text(
            "The invitation of dropped@example.com to Crew (crew) was revoked."
        )
        expect(button(dropped, "revoke")).to_have_count(0)
        expect(page.locator("tr", has_text="dropped@example.com")).to_contain_text("Revoked")
        page.screenshot(path=str(tmp_path / "tenant-people.png"), full_page=True)

    assert Invitation.objects.get(pk=dropped.pk).status == InvitationStatus.REVOKED
    assert Invitation.objects.get(pk=kept.pk).status == InvitationStatus.PENDING
    signals = OutboxEntry.objects.filter(kind=OutboxKind.SIGNAL)
    assert sorted(signals.values_list("workflow_type", "workflow_id")) == [
        ("resend", f"tenant-invitation-{kept.pk}"),
        ("revoked", f"tenant-invitation-{dropped.pk}"),
    ]
