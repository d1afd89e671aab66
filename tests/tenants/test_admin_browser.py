"""The tenant admin in a real browser (Debian's headless Chromium driven by Playwright)."""

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


def logged_in_page(browser, base: str, next_path: str):
    """A page of ``browser`` logged in to the admin as root@example.com, at ``next_path``."""
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/admin/login/?next={next_path}")
    page.fill("input[name=username]", "root@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    return page


# live_server serves from another thread: the data must be committed to be seen there.
@pytest.mark.django_db(transaction=True)
def test_provision_and_delete_from_the_admin(live_server, chromium_path, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    UserFactory(email="root@example.com", superuser=True)
    owner = UserFactory(email="owner@example.com")
    pending = TenantFactory(owner=owner, subdomain="alpha")
    active = TenantFactory(owner=owner, subdomain="bravo", status=TenantStatus.ACTIVE)
    # "localhost" is a public host (PUBLIC_HOSTS); 127.0.0.1 is too, but say it by name.
    base = live_server.url.replace("127.0.0.1", "localhost")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=ARGS, headless=True)
        try:
            page = logged_in_page(browser, base, "/admin/tenants/tenant/")
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
        finally:
            browser.close()

    assert Tenant.objects.get(pk=active.pk).status == TenantStatus.DELETING
    rows = set(OutboxEntry.objects.values_list("workflow_type", "workflow_id"))
    assert rows == {
        (TENANT_PROVISIONING, f"tenant-provision-{pending.pk}"),
        (TENANT_DELETION, f"tenant-delete-{active.pk}"),
    }


@pytest.mark.django_db(transaction=True)
def test_members_and_invitations_inline_with_resend_and_revoke(
    live_server, chromium_path, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

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
    base = live_server.url.replace("127.0.0.1", "localhost")

    def button(invitation, action):
        row = page.locator("tr", has_text=invitation.email)
        return row.locator(f"button[data-invitation-action='{action}']")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=ARGS, headless=True)
        try:
            page = logged_in_page(browser, base, f"/admin/tenants/tenant/{tenant.pk}/change/")
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
        finally:
            browser.close()

    assert Invitation.objects.get(pk=dropped.pk).status == InvitationStatus.REVOKED
    assert Invitation.objects.get(pk=kept.pk).status == InvitationStatus.PENDING
    signals = OutboxEntry.objects.filter(kind=OutboxKind.SIGNAL)
    assert sorted(signals.values_list("workflow_type", "workflow_id")) == [
        ("resend", f"tenant-invitation-{kept.pk}"),
        ("revoked", f"tenant-invitation-{dropped.pk}"),
    ]
