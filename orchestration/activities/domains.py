"""Domain activities: freeing a previous subdomain, verifying and re-checking custom
domains. Each calls one service of ``tenants.services.domains`` and is safe to repeat."""

from orchestration.activities import django_activity
from tenants.services import domains


@django_activity
def domain_release_previous(domain_id: int) -> int:
    """Frees the previous subdomain if its hold has expired (compare-and-set); returns the
    seconds still to wait, 0 when it is freed or gone."""
    return domains.domain_release_previous(domain_id=domain_id)


@django_activity
def custom_domain_verify(domain_id: int) -> str:
    """One lookup of a pending custom domain's TXT record; returns its status after it
    (``verified`` when found), ``""`` when the domain was removed."""
    return domains.custom_domain_verify(domain_id=domain_id)


@django_activity
def custom_domain_expire(domain_id: int) -> bool:
    return domains.custom_domain_expire(domain_id=domain_id)


@django_activity
def custom_domains_due(limit: int) -> list[int]:
    return domains.custom_domains_due(limit=limit)


@django_activity
def custom_domain_recheck(domain_id: int, grace_seconds: int) -> str:
    """One lookup of a verified (failing, stopped) custom domain's record; warns the owner
    once when it goes missing, stops it after the grace. Returns its status after it."""
    return domains.custom_domain_recheck(domain_id=domain_id, grace_seconds=grace_seconds)


ON_TENANT_QUEUES = [domain_release_previous, custom_domain_verify, custom_domain_expire]
RECHECK = [custom_domains_due, custom_domain_recheck]
