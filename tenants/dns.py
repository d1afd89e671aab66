"""DNS lookups for custom domains, with dnspython, at the nameservers
``CUSTOM_DOMAIN_NAMESERVERS`` names (the system's resolver when it names none)."""

import dns.exception
import dns.nameserver
import dns.resolver
from django.conf import settings

# Seconds one lookup may take in all (every nameserver, every retry).
LIFETIME = 5.0


class LookupUnavailable(Exception):
    """No nameserver answered: whether the record exists is unknown."""


def resolver() -> dns.resolver.Resolver:
    servers = settings.CUSTOM_DOMAIN_NAMESERVERS
    if not servers:
        result = dns.resolver.Resolver()
    else:
        result = dns.resolver.Resolver(configure=False)
        result.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
    result.lifetime = LIFETIME
    result.cache = None  # each check asks afresh: a record just added or removed is seen
    return result


def txt_values(name: str) -> set[str]:
    """The TXT strings at ``name`` (each record's strings joined), ``set()`` when it has
    none or does not exist; ``LookupUnavailable`` when no nameserver answered."""
    try:
        answer = resolver().resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return set()
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise LookupUnavailable(str(exc)) from exc
    return {b"".join(record.strings).decode("utf-8", "replace") for record in answer}
