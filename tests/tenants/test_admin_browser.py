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
