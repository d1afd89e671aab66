"""The tenant admin in a real browser (headless Chromium driven by Playwright)."""

import pytest

from accounts.models import User
from orchestration.models import OutboxEntry
from tenants.models import Tenant, TenantStatus
from tenants.services import tenant_create

ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_provision_and_delete_from_the_admin(live_server, chromium_path, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    User.objects.create_superuser("root@example.com", "a long passphrase 123")
    owner = User.objects.create_user("owner@example.com", "a long passphrase 123")
    pending = tenant_create(name="Alpha", subdomain="alpha", owner=owner)
    active = tenant_create(name="Bravo", subdomain="bravo", owner=owner)
    Tenant.objects.filter(pk=active.pk).update(status=TenantStatus.ACTIVE)
    base = live_server.url.replace("127.0.0.1", "localhost")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=ARGS)
        page = browser.new_page()
        page.goto(f"{base}/admin/login/")
        page.fill("input[name=username]", "root@example.com")
        page.fill("input[name=password]", "a long passphrase 123")
        page.click("input[type=submit], button[type=submit]")
        page.goto(f"{base}/admin/tenants/tenant/")

        page.check(f"input[name=_selected_action][value='{pending.pk}']")
        page.select_option("select[name=action]", "provision")
        page.click("button[name=index]")
        expect(page.locator("ul.messagelist")).to_contain_text(
            "1 queued for provisioning: Alpha (alpha)."
        )

        page.check(f"input[name=_selected_action][value='{active.pk}']")
        page.select_option("select[name=action]", "delete_tenants")
        page.click("button[name=index]")
        expect(page.locator("#delete-plan")).to_contain_text(active.schema_name)
        page.click("text=Yes, delete these tenants")
        expect(page.locator("ul.messagelist")).to_contain_text(
            "1 queued for deletion: Bravo (bravo)."
        )
        page.screenshot(path=str(tmp_path / "admin.png"), full_page=True)
        browser.close()

    assert Tenant.objects.get(pk=active.pk).status == TenantStatus.DELETING
    assert OutboxEntry.objects.count() == 2
