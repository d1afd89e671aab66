"""Writes to a tenant's domains: its primary host (made by provisioning), a change of its
subdomain (the old host redirects and is held until ``TENANT_OLD_DOMAIN_TTL`` has passed,
then freed), and custom domains (proven by a DNS TXT record, looked up again on a schedule).
Each service is one transaction; callers pass keyword arguments. See docs/operations.md,
"Domains"."""

import logging
import math
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants import dns, signals
from tenants.models import (
    LIVE,
    CustomDomainStatus,
    Domain,
    DomainKind,
    Tenant,
    TenantStatus,
    refuse_if_active,
)
from tenants.selectors import subdomain_host, tenant_subdomain_taken
from tenants.validators import validate_subdomain

logger = logging.getLogger(__name__)

SUBDOMAIN_TAKEN = "This subdomain is taken."
SUBDOMAIN_UNCHANGED = "This is already the organisation's subdomain."
DOMAIN_TAKEN = "This domain belongs to another organisation."
DOMAIN_ADDED = "This organisation already has this domain."
# The TXT record a custom domain is proven by: <VERIFICATION_LABEL>.<domain>.
VERIFICATION_LABEL = "_tenantflow-verification"


class TenantNotActive(Exception):
    """A change of domains asked for a tenant that is not active: nothing changed."""

    def __init__(self, tenant: Tenant):
        self.tenant = tenant
        super().__init__(
            f"Tenant {tenant.pk} is {tenant.status}: only an active organisation's domains "
            "can change."
        )


def tenant_host(tenant: Tenant) -> str:
    """The tenant's primary host, ``<subdomain>.<TENANT_BASE_DOMAIN>``."""
    return subdomain_host(tenant.subdomain)


def _free_expired(host: str) -> None:
    """Delete ``host``'s previous-subdomain row if its hold has expired (whoever held it),
    so the host can be taken now rather than when its release run gets to it."""
    Domain.objects.filter(
        domain=host, kind=DomainKind.PREVIOUS, expires_at__lte=timezone.now()
    ).delete()


def domain_create_primary(*, tenant_id) -> Domain:
    """Give the tenant its primary domain ``<subdomain>.<TENANT_BASE_DOMAIN>``. Idempotent."""
    tenant = Tenant.objects.get(pk=tenant_id)
    host = tenant_host(tenant)
    with transaction.atomic():
        _free_expired(host)
        domain, _ = Domain.objects.get_or_create(
            domain=host, tenant=tenant, defaults={"is_primary": True, "kind": DomainKind.PRIMARY}
        )
    return domain


def domain_delete_all(*, tenant_id) -> int:
    """Delete every domain of the tenant (primary, previous and custom); returns how many
    there were. Refused for an active tenant (``TenantIsActive``)."""
    refuse_if_active(Tenant.objects.get(pk=tenant_id), "domains")
    deleted, _ = Domain.objects.filter(tenant_id=tenant_id).delete()
    return deleted


def _active_tenant(tenant_id) -> Tenant:
    """The tenant under its row lock; ``TenantNotActive`` unless it is active."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    if tenant.status != TenantStatus.ACTIVE:
        raise TenantNotActive(tenant)
    return tenant


# --- a new subdomain -------------------------------------------------------------------------


def tenant_change_subdomain(*, tenant_id, subdomain: str, actor=None) -> Tenant:
    """Serve an active tenant at ``<subdomain>.<TENANT_BASE_DOMAIN>`` from now on.

    In one transaction, under the tenant's row lock: the new host becomes its primary
    domain, and the old one a ``previous`` domain that answers ``308`` to the new host and
    is held (no other tenant can take it) for ``TENANT_OLD_DOMAIN_TTL`` seconds; sends
    ``tenant_subdomain_changed``, whose listener starts the run that frees it then. A
    subdomain the tenant itself still holds as a previous one is taken back at once.

    The subdomain is validated as at signup: invalid, reserved, taken (by any tenant, or
    held as another tenant's previous subdomain) or unchanged is a ``ValidationError`` on
    ``subdomain``; a tenant that is not active raises ``TenantNotActive``. Either way
    nothing changes. Returns the tenant as saved.
    """
    try:
        validate_subdomain(subdomain)
    except ValidationError as exc:
        raise ValidationError({"subdomain": exc.messages}) from exc
    new_host = subdomain_host(subdomain)
    try:
        with transaction.atomic():
            tenant = _active_tenant(tenant_id)
            if subdomain == tenant.subdomain:
                raise ValidationError({"subdomain": [SUBDOMAIN_UNCHANGED]})
            _free_expired(new_host)
            if tenant_subdomain_taken(subdomain=subdomain, except_tenant_id=tenant.pk):
                raise ValidationError({"subdomain": [SUBDOMAIN_TAKEN]})
            expires_at = timezone.now() + timedelta(seconds=settings.TENANT_OLD_DOMAIN_TTL)
            Domain.objects.filter(tenant=tenant, domain=new_host).delete()  # its own, held
            previous = list(
                Domain.objects.select_for_update().filter(tenant=tenant, kind=DomainKind.PRIMARY)
            )
            Domain.objects.filter(pk__in=[d.pk for d in previous]).update(
                kind=DomainKind.PREVIOUS, is_primary=False, expires_at=expires_at
            )
            tenant.subdomain = subdomain
            tenant.save(update_fields=["subdomain", "updated_at"])
            Domain.objects.create(
                domain=new_host, tenant=tenant, kind=DomainKind.PRIMARY, is_primary=True
            )
            previous = list(Domain.objects.filter(pk__in=[d.pk for d in previous]))
            signals.tenant_subdomain_changed.send(
                sender=Tenant, tenant=tenant, previous=previous, actor=actor
            )
    except IntegrityError as exc:  # a concurrent change took it first
        raise ValidationError({"subdomain": [SUBDOMAIN_TAKEN]}) from exc
    logger.info("tenant %s moved to a new subdomain by %s", tenant.pk, _who(actor))
    return tenant


def domain_release_previous(*, domain_id: int) -> int:
    """Free a previous subdomain whose hold has expired: delete its row if it is still a
    previous domain and its ``expires_at`` has passed (a compare-and-set: idempotent, and a
    row the tenant took back is left alone). Returns the seconds left until it can be
    freed, 0 when it is freed or gone."""
    with transaction.atomic():
        domain = (
            Domain.objects.select_for_update()
            .filter(pk=domain_id, kind=DomainKind.PREVIOUS)
            .first()
        )
        if domain is None:
            return 0
        left = (domain.expires_at - timezone.now()).total_seconds()
        if left > 0:
            return math.ceil(left)
        domain.delete()
    logger.info("previous domain %s freed", domain_id)
    return 0


# --- custom domains --------------------------------------------------------------------------

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def custom_domain_problem(name: str) -> str | None:
    """Why ``name`` (lower case, no trailing dot) cannot be a custom domain, or None."""
    if not name:
        return "Enter a domain."
    if not name.isascii():
        return "Enter the domain in ASCII (an internationalised name in its xn-- form)."
    if len(name) > 253 - len(VERIFICATION_LABEL) - 1:
        return "This domain is too long to hold its verification record."
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return "Enter a domain name such as www.example.com."
    if labels[-1].isdigit():
        return "Enter a domain name, not an IP address."
    platform = {settings.TENANT_BASE_DOMAIN, *settings.PUBLIC_HOSTS}
    if any(name == own or name.endswith(f".{own}") for own in platform):
        return "This domain is the platform's own."
    return None


def normalize_domain(value) -> str:
    """A domain as stored: stripped, lower case (ASCII only), without a trailing dot."""
    value = value.strip().rstrip(".") if isinstance(value, str) else ""
    return value.lower() if value.isascii() else value


def txt_record_name(domain: str) -> str:
    """The name of the TXT record that proves ``domain``."""
    return f"{VERIFICATION_LABEL}.{domain}"


def custom_domain_add(*, tenant_id, domain: str, actor=None) -> Domain:
    """Add a custom domain to an active tenant, ``pending`` until its TXT record is found:
    ``txt_record_name(domain)`` holding the new row's random ``token``. Sends
    ``custom_domain_added``, whose listener starts the run that looks for the record.

    A domain that is not one, or is the platform's own (``TENANT_BASE_DOMAIN`` or under it,
    ``PUBLIC_HOSTS``), or is any tenant's already (a domain belongs to one tenant at a
    time), or would be one more than ``CUSTOM_DOMAINS_PER_TENANT``, is a ``ValidationError``
    on ``domain``; a tenant that is not active raises
    ``TenantNotActive``. Either way nothing changes."""
    name = normalize_domain(domain)
    if problem := custom_domain_problem(name):
        raise ValidationError({"domain": [problem]})
    try:
        with transaction.atomic():
            tenant = _active_tenant(tenant_id)
            limit = settings.CUSTOM_DOMAINS_PER_TENANT
            if Domain.objects.filter(tenant=tenant, kind=DomainKind.CUSTOM).count() >= limit:
                raise ValidationError({"domain": [_at_most(limit)]})
            existing = Domain.objects.filter(domain=name).first()
            if existing is not None:
                raise ValidationError(
                    {"domain": [DOMAIN_ADDED if existing.tenant_id == tenant.pk else DOMAIN_TAKEN]}
                )
            row = Domain.objects.create(
                domain=name,
                tenant=tenant,
                kind=DomainKind.CUSTOM,
                is_primary=False,
                status=CustomDomainStatus.PENDING,
                token=secrets.token_urlsafe(24),
            )
            signals.custom_domain_added.send(sender=Domain, domain=row, actor=actor)
    except IntegrityError as exc:  # added elsewhere at the same moment
        raise ValidationError({"domain": [DOMAIN_TAKEN]}) from exc
    logger.info("custom domain %s added to tenant %s by %s", row.pk, tenant.pk, _who(actor))
    return row


def _at_most(limit: int) -> str:
    if limit == 0:
        return "Custom domains are not available."
    return f"An organisation has at most {limit} custom domains; remove one first."


def custom_domain_remove(*, tenant_id, domain: str, actor=None) -> None:
    """Remove a custom domain of an active tenant: it stops serving at once and is free for
    any tenant. Sends ``custom_domain_removed``. A domain the tenant does not have raises
    ``Domain.DoesNotExist``; a tenant that is not active, ``TenantNotActive``."""
    name = normalize_domain(domain)
    with transaction.atomic():
        tenant = _active_tenant(tenant_id)
        row = (
            Domain.objects.select_for_update()
            .filter(tenant=tenant, domain=name, kind=DomainKind.CUSTOM)
            .first()
        )
        if row is None:
            raise Domain.DoesNotExist(name)
        domain_id = row.pk
        row.delete()
        signals.custom_domain_removed.send(
            sender=Domain, tenant=tenant, domain_id=domain_id, actor=actor
        )
    logger.info("custom domain %s removed from tenant %s by %s", domain_id, tenant.pk, _who(actor))


def _record_present(domain: Domain) -> bool | None:
    """Whether the domain's TXT record holds its token; None when the lookup could not
    tell (no nameserver answered)."""
    try:
        values = dns.txt_values(txt_record_name(domain.domain))
    except dns.LookupUnavailable:
        return None
    return domain.token in values


def custom_domain_verify(*, domain_id: int) -> str:
    """Look a pending custom domain's TXT record up once; found, the domain is ``verified``
    (and serves). Returns its status afterwards, ``""`` when it is gone (removed). Safe to
    repeat: only a pending domain is verified (compare-and-set)."""
    domain = Domain.objects.filter(pk=domain_id, kind=DomainKind.CUSTOM).first()
    if domain is None:
        return ""
    if domain.status != CustomDomainStatus.PENDING:
        return domain.status
    found = _record_present(domain)
    now = timezone.now()
    pending = Domain.objects.filter(pk=domain_id, status=CustomDomainStatus.PENDING)
    if found:
        pending.update(status=CustomDomainStatus.VERIFIED, verified_at=now, checked_at=now)
    elif found is False:
        pending.update(checked_at=now)
    status = Domain.objects.filter(pk=domain_id).values_list("status", flat=True).first()
    return status or ""


def custom_domain_expire(*, domain_id: int) -> bool:
    """A pending custom domain whose record was never found is ``expired`` (it will not
    serve; remove it and add it again for a new token). Returns whether it was pending."""
    return bool(
        Domain.objects.filter(pk=domain_id, status=CustomDomainStatus.PENDING).update(
            status=CustomDomainStatus.EXPIRED, checked_at=timezone.now()
        )
    )


RECHECKED = (CustomDomainStatus.VERIFIED, CustomDomainStatus.FAILING, CustomDomainStatus.STOPPED)


def custom_domains_due(*, limit: int) -> list[int]:
    """Up to ``limit`` custom domains of live tenants to look up again (verified, failing
    or stopped), those looked up longest ago first."""
    rows = Domain.objects.filter(
        kind=DomainKind.CUSTOM, status__in=RECHECKED, tenant__status__in=LIVE
    ).order_by("checked_at", "pk")
    return list(rows.values_list("pk", flat=True)[:limit])


def custom_domain_recheck(*, domain_id: int, grace_seconds: int) -> str:
    """Look a verified (or failing, or stopped) custom domain's TXT record up again.

    Found: it is ``verified`` (serving again if it was stopped). Missing from a verified
    domain: it is ``failing`` — it still serves, and its tenant's owner is emailed a
    warning, once per failing spell. Missing for ``grace_seconds`` since it began failing:
    it is ``stopped`` and no longer serves. A lookup no nameserver answered changes nothing.
    Under the row's lock: a retry after a commit sends no second warning. Returns the
    status afterwards (``""`` when the domain is gone)."""
    domain = Domain.objects.filter(pk=domain_id, kind=DomainKind.CUSTOM).first()
    if domain is None or domain.status not in RECHECKED:
        return domain.status if domain is not None else ""
    found = _record_present(domain)
    with transaction.atomic():
        domain = (
            Domain.objects.select_for_update()
            .select_related("tenant__owner")
            .filter(pk=domain_id, status__in=RECHECKED)
            .first()
        )
        if domain is None:
            return ""
        now = timezone.now()
        if found is not None:
            domain.checked_at = now
        if found:
            domain.status, domain.failing_since, domain.warned_at = (
                CustomDomainStatus.VERIFIED,
                None,
                None,
            )
        elif found is False and domain.status == CustomDomainStatus.VERIFIED:
            domain.status, domain.failing_since = CustomDomainStatus.FAILING, now
        if domain.status == CustomDomainStatus.FAILING and domain.warned_at is None:
            _warn_failing(domain)
            domain.warned_at = now
        if (
            found is False
            and domain.status == CustomDomainStatus.FAILING
            and domain.failing_since + timedelta(seconds=grace_seconds) <= now
        ):
            domain.status = CustomDomainStatus.STOPPED
        domain.save(update_fields=["status", "checked_at", "failing_since", "warned_at"])
    return domain.status


def _warn_failing(domain: Domain) -> None:
    grace = timedelta(seconds=settings.CUSTOM_DOMAIN_GRACE)
    stop_at = domain.failing_since + grace
    send_mail(
        f"Your domain {domain.domain} will stop working",
        f"The DNS record that proves {domain.domain} belongs to {domain.tenant.name} is "
        f"missing:\n\n  {txt_record_name(domain.domain)}  TXT  {domain.token}\n\n"
        f"Put it back before {stop_at:%Y-%m-%d %H:%M} UTC, or {domain.domain} stops serving "
        "your organisation then.",
        None,
        [domain.tenant.owner.email],
    )


def _who(actor) -> str:
    return "the system" if actor is None else f"user {actor.pk}"
