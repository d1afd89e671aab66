"""The operations page in a real browser (Debian's headless Chromium driven by Playwright),
with a Temporal server of its own that the test stops halfway: the page must still load and
say that the Temporal part is unavailable."""

import re

import pytest
from temporalio.client import Client

from devstack.localservices import LOCAL_DIR, TemporalDevServer
from orchestration.models import OutboxEntry, OutboxStatus
from orchestration.operations import failed_onboarding_query
from tenants.models import Tenant, TenantStatus
from tests.factories import PASSWORD, OutboxEntryFactory, TenantFactory, UserFactory
from tests.kit import run_async, wait_until
from tests.orchestration.test_operations import fail_an_onboarding_run, stale
from tests.tenants.test_admin_browser import ARGS


@pytest.fixture
def own_temporal(settings, tmp_path):
    """A Temporal dev server for this test only (the session's must not be stopped)."""
    server = TemporalDevServer(log_file=LOCAL_DIR / "temporal-operations-test.log").start()
    settings.TEMPORAL_ADDRESS = server.address
    settings.TEMPORAL_UI_URL = "http://temporal-ui.example:8233"
    settings.OPERATIONS_TEMPORAL_TIMEOUT = 10  # a busy machine; the answer ends the wait
    try:
        yield server
    finally:
        server.stop()


async def _failed_runs(address: str) -> list:
    client = await Client.connect(address)
    return [run async for run in client.list_workflows(failed_onboarding_query())]


# Marked by hand: its server is its own, not one of the session fixtures the marker is
# derived from.
@pytest.mark.temporal
@pytest.mark.django_db(transaction=True)
def test_operations_page_with_temporal_up_then_down(
    live_server, chromium_path, tmp_path, own_temporal, settings
):
    from playwright.sync_api import expect, sync_playwright

    UserFactory(email="root@example.com", superuser=True)
    newcomer = UserFactory(email="new@example.com")
    failed = TenantFactory(
        name="Acme",
        subdomain="acme",
        status=TenantStatus.FAILED,
        last_error="create_schema: disk full",
    )
    deleting = stale(
        TenantFactory(
            name="Gone",
            subdomain="gone",
            status=TenantStatus.DELETING,
            workflow_id="tenant-delete-x",
        ),
        hours=3,
    )
    refused = OutboxEntryFactory(status=OutboxStatus.FAILED, last_error="InvalidArgument: bad")
    workflow_id = run_async(fail_an_onboarding_run(own_temporal.address, newcomer.pk))
    wait_until(
        lambda: run_async(_failed_runs(own_temporal.address)),
        timeout=30,
        what="the failed onboarding run to be listed by visibility",
    )
    base = live_server.url.replace("127.0.0.1", "localhost")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("input[name=username]", "root@example.com")
            page.fill("input[name=password]", PASSWORD)
            page.click("input[type=submit], button[type=submit]")
            page.click("#operations-link a")  # from the admin index
            expect(page).to_have_url(re.compile(r"/admin/operations/$"))

            def onboarding_count() -> bool:
                # Each load asks Temporal again; a busy server may miss an answer (the page
                # then says so), which a reload recovers from.
                if page.locator("[data-count=onboarding]").inner_text() == "1":
                    return True
                page.reload()
                return False

            wait_until(onboarding_count, timeout=60, what="the page to list the failed run")

            expect(page.locator("[data-count=outbox]")).to_have_text("1")
            expect(page.locator("[data-count=tenants]")).to_have_text("2")
            expect(page.locator("[data-count=onboarding]")).to_have_text("1")
            onboarding = page.locator(f"#onboarding tr[data-run='{workflow_id}']")
            expect(onboarding).to_contain_text("new@example.com")
            expect(onboarding.get_by_role("link", name="Temporal UI")).to_have_attribute(
                "href",
                re.compile(
                    rf"^http://temporal-ui\.example:8233/namespaces/default/workflows/{workflow_id}/"
                ),
            )
            expect(page.locator(f"#tenants tr[data-tenant='{failed.pk}']")).to_contain_text(
                "create_schema: disk full"
            )
            page.screenshot(path=str(tmp_path / "operations.png"), full_page=True)

            onboarding.get_by_role("button", name="Resend verification").click()
            expect(page.locator("ul.messagelist")).to_contain_text(
                "Verification email queued for 1: new@example.com."
            )
            page.locator(f"#tenants tr[data-tenant='{failed.pk}']").get_by_role(
                "button", name="Retry provisioning"
            ).click()
            expect(page.locator("ul.messagelist")).to_contain_text(
                "1 queued for another provisioning attempt: Acme (acme)."
            )
            page.locator(f"#tenants tr[data-tenant='{deleting.pk}']").get_by_role(
                "button", name="Re-queue deletion"
            ).click()
            expect(page.locator("ul.messagelist")).to_contain_text(
                "1 queued for deletion again: Gone (gone)."
            )
            page.locator(f"#outbox tr[data-outbox='{refused.pk}']").get_by_role(
                "button", name="Retry now"
            ).click()
            expect(page.locator("ul.messagelist")).to_contain_text(
                "1 row(s) will be retried by the relay."
            )

            own_temporal.stop()
            page.goto(f"{base}/admin/operations/")
            expect(page.locator("[data-unavailable=onboarding]")).to_contain_text(
                "Temporal is unavailable"
            )
            expect(page.locator("[data-count=onboarding]")).to_have_text("unknown")
            # The database sections are all there: the rows the actions queued are pending, and
            # the tenants moved on (one provisioning again, the other's deletion re-planned).
            expect(page.locator("[data-count=outbox]")).to_have_text("4")
            expect(page.locator("#tenants h2")).to_have_text("Tenants failed or stuck (0)")
            page.screenshot(path=str(tmp_path / "operations-temporal-down.png"), full_page=True)
        finally:
            browser.close()

    assert Tenant.objects.get(pk=failed.pk).status == TenantStatus.PROVISIONING
    assert set(OutboxEntry.objects.values_list("workflow_type", "status")) == {
        ("TenantProvisioningWorkflow", OutboxStatus.PENDING),  # the refused row, retried
        ("TenantDeletionWorkflow", OutboxStatus.PENDING),
        ("VerificationEmailWorkflow", OutboxStatus.PENDING),
    }
    assert OutboxEntry.objects.count() == 4
