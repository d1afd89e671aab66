from django.conf import settings
from django.http import Http404, HttpResponsePermanentRedirect, JsonResponse
from django.utils import timezone
from django_tenants.middleware.main import TenantMainMiddleware

from core.errors import CONNECTION_ERRORS, database_unavailable
from tenants.models import DomainKind, TenantStatus, suspended_answer
from tenants.selectors import domain_for_host, subdomain_host


class _Suspended(Exception):
    def __init__(self, tenant):
        self.tenant = tenant


class _Moved(Exception):
    def __init__(self, host: str):
        self.host = host


class TenantRoutingMiddleware(TenantMainMiddleware):
    """Serves the hosts of an *active* tenant in its schema: its primary host
    ``<subdomain>.<TENANT_BASE_DOMAIN>`` and its verified custom domains (``failing`` ones
    too, until they are stopped).

    The base domain and ``PUBLIC_HOSTS`` get the public URL conf in the public schema. A
    subdomain the tenant changed away from answers ``308`` to the same path and query on
    its current host until the old one expires. The host of a suspended tenant answers 403
    with a JSON body naming the state and the reason (its schema is never entered); any
    other host — unknown, an expired previous subdomain, a custom domain that is pending,
    expired or stopped, a tenant that is neither active nor suspended — is answered 404: a
    tenant scheduled for deletion stops being served the moment it is scheduled.
    """

    def process_request(self, request):
        try:
            return super().process_request(request)
        except CONNECTION_ERRORS:  # the tenant lookup met an outage: 503, not a debug page
            return database_unavailable()
        except _Suspended as suspended:
            return JsonResponse(suspended_answer(suspended.tenant), status=403)
        except _Moved as moved:
            _, colon, port = request.get_host().rpartition(":")
            port = f":{port}" if colon and port.isdigit() else ""
            location = f"{request.scheme}://{moved.host}{port}{request.get_full_path()}"
            # 308: the method and body are kept, unlike 301.
            response = HttpResponsePermanentRedirect(location)
            response.status_code = 308
            return response

    def get_tenant(self, domain_model, hostname):
        if hostname.lower() in settings.PUBLIC_HOSTS:
            # No query: /healthz must answer even when the database does not.
            raise domain_model.DoesNotExist(hostname)
        domain = domain_for_host(host=hostname)
        if domain is None:
            raise domain_model.DoesNotExist(hostname)
        tenant = domain.tenant
        if domain.kind == DomainKind.PREVIOUS and domain.expires_at > timezone.now():
            raise _Moved(subdomain_host(tenant.subdomain))
        if not domain.serves:
            raise domain_model.DoesNotExist(hostname)
        if tenant.status == TenantStatus.SUSPENDED:
            raise _Suspended(tenant)
        return tenant

    def no_tenant_found(self, request, hostname):
        if hostname.lower() in settings.PUBLIC_HOSTS:
            self.setup_url_routing(request, force_public=True)
            return None
        raise Http404(f"No tenant for host {hostname!r}.")
