"""A tenant's domains: a new subdomain (the old host redirects, held, then freed) and custom
domains (verified against a real DNS server on loopback, re-checked, stopped), through the
services and the host router."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from orchestration.models import OutboxEntry
from tenants.models import CustomDomainStatus, Domain, Tenant, TenantStatus
from tenants.services import account_signup
from tenants.services.domains import (
    DOMAIN_TAKEN,
    SUBDOMAIN_TAKEN,
    TenantNotActive,
    custom_domain_add,
    custom_domain_expire,
    custom_domain_recheck,
    custom_domain_remove,
    custom_domain_verify,
    custom_domains_due,
    domain_create_primary,
    domain_release_previous,
    tenant_change_subdomain,
    txt_record_name,
)
from tests.factories import PASSWORD, TenantFactory

pytestmark = pytest.mark.django_db


def hosts(tenant) -> dict[str, str]:
    return dict(Domain.objects.filter(tenant=tenant).values_list("domain", "kind"))


def starts(workflow_type: str) -> list[OutboxEntry]:
    return list(OutboxEntry.objects.filter(workflow_type=workflow_type))


# --- a new subdomain -------------------------------------------------------------------------


def test_a_new_subdomain_is_primary_and_the_old_one_is_held_then_released(acme, settings):
    settings.TENANT_OLD_DOMAIN_TTL = 3600
    before = timezone.now()
    tenant = tenant_change_subdomain(tenant_id=acme.pk, subdomain="acme-labs")
    assert Tenant.objects.get(pk=acme.pk).subdomain == tenant.subdomain == "acme-labs"
    assert hosts(acme) == {"acme-labs.localhost": "primary", "acme.localhost": "previous"}
    old = Domain.objects.get(domain="acme.localhost")
    assert not old.is_primary
    assert (
        before + timedelta(seconds=3600)
        <= old.expires_at
        <= timezone.now() + timedelta(seconds=3600)
    )
    (start,) = starts("PreviousDomainReleaseWorkflow")
    assert start.workflow_id == f"previous-domain-release-{old.pk}"
    assert start.arguments["domain_id"] == old.pk
    assert start.arguments["hold_seconds"] == 3600
    # Not yet: the hold has not expired; then it has, and it is freed once only.
    assert 3590 < domain_release_previous(domain_id=old.pk) <= 3600
    assert Domain.objects.filter(pk=old.pk).exists()
    Domain.objects.filter(pk=old.pk).update(expires_at=timezone.now())
    assert domain_release_previous(domain_id=old.pk) == 0
    assert domain_release_previous(domain_id=old.pk) == 0
    assert hosts(acme) == {"acme-labs.localhost": "primary"}


def test_a_held_subdomain_cannot_be_taken_by_another_tenant_until_it_expires(acme, owner):
    tenant_change_subdomain(tenant_id=acme.pk, subdomain="acme-labs")
    other = TenantFactory(owner=owner, subdomain="other", status=TenantStatus.ACTIVE)
    domain_create_primary(tenant_id=other.pk)
    with pytest.raises(ValidationError) as refused:
        tenant_change_subdomain(tenant_id=other.pk, subdomain="acme")
    assert refused.value.message_dict == {"subdomain": [SUBDOMAIN_TAKEN]}
    with pytest.raises(ValidationError) as refused:
        account_signup(
            email="eve@example.com", password=PASSWORD, organization_name="E", subdomain="acme"
        )
    assert refused.value.message_dict == {"subdomain": [SUBDOMAIN_TAKEN]}
    assert hosts(other) == {"other.localhost": "primary"}
    # Expired (its release run not there yet): it is free, and taken over at once.
    Domain.objects.filter(domain="acme.localhost").update(expires_at=timezone.now())
    tenant_change_subdomain(tenant_id=other.pk, subdomain="acme")
    assert hosts(other) == {"acme.localhost": "primary", "other.localhost": "previous"}
    assert hosts(acme) == {"acme-labs.localhost": "primary"}


def test_a_tenant_takes_its_own_held_subdomain_back(acme):
    tenant_change_subdomain(tenant_id=acme.pk, subdomain="acme-labs")
    held = Domain.objects.get(domain="acme.localhost")
    tenant_change_subdomain(tenant_id=acme.pk, subdomain="acme")
    assert hosts(acme) == {"acme.localhost": "primary", "acme-labs.localhost": "previous"}
    assert domain_release_previous(domain_id=held.pk) == 0  # its row is gone: nothing to do
    assert hosts(acme) == {"acme.localhost": "primary", "acme-labs.localhost": "previous"}


@pytest.mark.parametrize(
    ("subdomain", "message"),
    [
        ("admin", "reserved"),
        ("Not A Label", "Use lower-case letters only."),
        ("acme", "already the organisation's subdomain"),
        ("taken", SUBDOMAIN_TAKEN),
    ],
)
def test_a_bad_subdomain_is_refused_and_changes_nothing(acme, owner, subdomain, message):
    TenantFactory(owner=owner, subdomain="taken", status=TenantStatus.DELETED)
    with pytest.raises(ValidationError) as refused:
        tenant_change_subdomain(tenant_id=acme.pk, subdomain=subdomain)
    assert message in " ".join(refused.value.message_dict["subdomain"])
    assert Tenant.objects.get(pk=acme.pk).subdomain == "acme"
    assert hosts(acme) == {"acme.localhost": "primary"}
    assert starts("PreviousDomainReleaseWorkflow") == []


@pytest.mark.parametrize("status", [TenantStatus.PENDING, TenantStatus.SUSPENDED])
def test_only_an_active_tenant_changes_its_domains(acme, status):
    Tenant.objects.filter(pk=acme.pk).update(status=status, suspension_reason="billing")
    with pytest.raises(TenantNotActive):
        tenant_change_subdomain(tenant_id=acme.pk, subdomain="elsewhere")
    with pytest.raises(TenantNotActive):
        custom_domain_add(tenant_id=acme.pk, domain="shop.example.org")
    assert hosts(acme) == {"acme.localhost": "primary"}


# --- the host router -------------------------------------------------------------------------


def test_the_old_host_redirects_to_the_same_path_and_query_on_the_new_one(acme, client):
    tenant_change_subdomain(tenant_id=acme.pk, subdomain="acme-labs")
    response = client.get("/projects/7/?tab=files&x=1", HTTP_HOST="acme.localhost:8000")
    assert response.status_code == 308
    assert response["Location"] == "http://acme-labs.localhost:8000/projects/7/?tab=files&x=1"
    secure = client.post("/a/b", secure=True, HTTP_HOST="acme.localhost")
    assert (secure.status_code, secure["Location"]) == (308, "https://acme-labs.localhost/a/b")
    # Expired: 404, whether or not its release run has freed it yet.
    Domain.objects.filter(domain="acme.localhost").update(expires_at=timezone.now())
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 404


def test_the_new_host_serves_the_tenant(acme):
    tenant_change_subdomain(tenant_id=acme.pk, subdomain="acme-labs")
    from tenants.selectors import domain_for_host

    found = domain_for_host(host="ACME-LABS.localhost")
    assert (found.tenant.pk, found.serves) == (acme.pk, True)
    assert domain_for_host(host="acme.localhost").serves is False


# --- custom domains --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("", "Enter a domain."),
        ("localhost", "Enter a domain name"),
        ("-bad-.example.com", "Enter a domain name"),
        ("a..example.com", "Enter a domain name"),
        ("10.0.0.1", "not an IP address"),
        ("bücher.example", "ASCII"),
        ("acme.localhost", "the platform's own"),
        ("deep.acme.localhost", "the platform's own"),
        ("127.0.0.1", "not an IP address"),
        ("x" * 60 + "." + "y" * 60 + "." + "z" * 60 + "." + "w" * 60 + ".com", "too long"),
    ],
)
def test_a_domain_that_is_not_one_or_is_the_platforms_is_refused(acme, domain, message):
    with pytest.raises(ValidationError) as refused:
        custom_domain_add(tenant_id=acme.pk, domain=domain)
    assert message in refused.value.message_dict["domain"][0]
    assert hosts(acme) == {"acme.localhost": "primary"}
    assert starts("CustomDomainVerificationWorkflow") == []


def test_a_tenant_has_at_most_its_share_of_custom_domains(acme, settings):
    settings.CUSTOM_DOMAINS_PER_TENANT = 2
    custom_domain_add(tenant_id=acme.pk, domain="a.example.org")
    custom_domain_add(tenant_id=acme.pk, domain="b.example.org")
    with pytest.raises(ValidationError, match="at most 2 custom domains"):
        custom_domain_add(tenant_id=acme.pk, domain="c.example.org")
    custom_domain_remove(tenant_id=acme.pk, domain="a.example.org")
    custom_domain_add(tenant_id=acme.pk, domain="c.example.org")
    settings.CUSTOM_DOMAINS_PER_TENANT = 0
    with pytest.raises(ValidationError, match="not available"):
        custom_domain_add(tenant_id=acme.pk, domain="d.example.org")
    assert len(starts("CustomDomainVerificationWorkflow")) == 3


def test_a_public_host_is_the_platforms_own(acme, settings):
    settings.PUBLIC_HOSTS = [*settings.PUBLIC_HOSTS, "www.platform.example"]
    with pytest.raises(ValidationError, match="the platform's own"):
        custom_domain_add(tenant_id=acme.pk, domain="www.platform.example")


def test_a_domain_belongs_to_one_tenant_at_a_time(acme, owner):
    other = TenantFactory(owner=owner, subdomain="other", status=TenantStatus.ACTIVE)
    custom_domain_add(tenant_id=acme.pk, domain="Shop.Example.org.")
    assert hosts(acme)["shop.example.org"] == "custom"
    with pytest.raises(ValidationError) as refused:
        custom_domain_add(tenant_id=other.pk, domain="shop.example.org")
    assert refused.value.message_dict == {"domain": [DOMAIN_TAKEN]}
    with pytest.raises(ValidationError, match="already has"):
        custom_domain_add(tenant_id=acme.pk, domain="shop.example.org")
    with pytest.raises(Domain.DoesNotExist):
        custom_domain_remove(tenant_id=other.pk, domain="shop.example.org")
    custom_domain_remove(tenant_id=acme.pk, domain="shop.example.org")
    custom_domain_add(tenant_id=other.pk, domain="shop.example.org")
    assert Domain.objects.get(domain="shop.example.org").tenant_id == other.pk


def test_a_custom_domain_is_verified_by_its_txt_record_then_served(
    acme, dns_server, client, settings
):
    settings.ALLOWED_HOSTS = ["*"]
    domain = custom_domain_add(tenant_id=acme.pk, domain="shop.example.org")
    (start,) = starts("CustomDomainVerificationWorkflow")
    assert start.arguments["domain_id"] == domain.pk
    assert domain.token not in str(start.arguments)  # ids only in a run's input
    assert client.get("/", HTTP_HOST="shop.example.org").status_code == 404  # pending
    # Not there, then the wrong value: still pending; then the right one: verified.
    assert custom_domain_verify(domain_id=domain.pk) == CustomDomainStatus.PENDING
    dns_server.set_txt(txt_record_name("shop.example.org"), "something else")
    assert custom_domain_verify(domain_id=domain.pk) == CustomDomainStatus.PENDING
    dns_server.set_txt(txt_record_name("shop.example.org"), domain.token)
    assert custom_domain_verify(domain_id=domain.pk) == CustomDomainStatus.VERIFIED
    assert custom_domain_verify(domain_id=domain.pk) == CustomDomainStatus.VERIFIED
    assert dns_server.asked(txt_record_name("shop.example.org")) == 3  # not asked again
    row = Domain.objects.get(pk=domain.pk)
    assert row.verified_at is not None
    assert row.serves
    from tenants.selectors import domain_for_host

    assert domain_for_host(host="shop.example.org").tenant.pk == acme.pk
    assert custom_domain_expire(domain_id=domain.pk) is False  # verified stays verified


def test_a_domain_never_verified_expires_and_is_not_served(acme, dns_server, client, settings):
    settings.ALLOWED_HOSTS = ["*"]
    domain = custom_domain_add(tenant_id=acme.pk, domain="shop.example.org")
    assert custom_domain_expire(domain_id=domain.pk) is True
    assert Domain.objects.get(pk=domain.pk).status == CustomDomainStatus.EXPIRED
    dns_server.set_txt(txt_record_name("shop.example.org"), domain.token)
    assert custom_domain_verify(domain_id=domain.pk) == CustomDomainStatus.EXPIRED
    assert client.get("/", HTTP_HOST="shop.example.org").status_code == 404


def test_a_lost_record_warns_the_owner_once_then_stops_the_domain(acme, dns_server, settings):
    domain = custom_domain_add(tenant_id=acme.pk, domain="shop.example.org")
    record = txt_record_name("shop.example.org")
    dns_server.set_txt(record, domain.token)
    custom_domain_verify(domain_id=domain.pk)
    mail.outbox.clear()
    assert custom_domains_due(limit=10) == [domain.pk]
    assert custom_domain_recheck(domain_id=domain.pk, grace_seconds=3600) == "verified"
    dns_server.remove(record)
    assert custom_domain_recheck(domain_id=domain.pk, grace_seconds=3600) == "failing"
    assert custom_domain_recheck(domain_id=domain.pk, grace_seconds=3600) == "failing"
    (warning,) = mail.outbox
    assert warning.to == [acme.owner.email]
    assert record in warning.body
    assert Domain.objects.get(pk=domain.pk).serves  # still, during the grace
    Domain.objects.filter(pk=domain.pk).update(failing_since=timezone.now() - timedelta(hours=2))
    assert custom_domain_recheck(domain_id=domain.pk, grace_seconds=3600) == "stopped"
    assert not Domain.objects.get(pk=domain.pk).serves
    assert len(mail.outbox) == 1
    # The record back: it serves again.
    dns_server.set_txt(record, domain.token)
    assert custom_domain_recheck(domain_id=domain.pk, grace_seconds=3600) == "verified"
    row = Domain.objects.get(pk=domain.pk)
    assert (row.serves, row.failing_since, row.warned_at) == (True, None, None)


def test_an_unanswered_lookup_changes_nothing(acme, settings):
    from devstack.localservices import free_port

    settings.CUSTOM_DOMAIN_NAMESERVERS = [("127.0.0.1", free_port())]  # nothing answers
    domain = custom_domain_add(tenant_id=acme.pk, domain="shop.example.org")
    Domain.objects.filter(pk=domain.pk).update(status=CustomDomainStatus.VERIFIED)
    assert custom_domain_recheck(domain_id=domain.pk, grace_seconds=0) == "verified"
    assert mail.outbox == []
