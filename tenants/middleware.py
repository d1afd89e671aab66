from django.conf import settings
from django.http import Http404, JsonResponse
from django_tenants.middleware.main import TenantMainMiddleware

from core.errors import CONNECTION_ERRORS, database_unavailable
from tenants.models import TenantStatus, suspended_answer
from tenants.selectors import tenant_for_host


class _Suspended(Exception):
    def __init__(self, tenant):
        self.tenant = tenant


class TenantRoutingMiddleware(TenantMainMiddleware):
    """Serves ``<subdomain>.<TENANT_BASE_DOMAIN>`` of an *active* tenant in its schema.

    The base domain and ``PUBLIC_HOSTS`` get the public URL conf in the public schema. The
    host of a suspended tenant answers 403 with a JSON body naming the state and the reason
    (its schema is never entered); any other host, and the host of a tenant that is neither
    active nor suspended, is answered 404 — a pending tenant has no schema yet, a deleted
    one has none any more, and one scheduled for deletion stops being served the moment it
    is scheduled (``tenant_for_host`` does not find it).
    """

    def process_request(self, request):
        try:
            return super().process_request(request)
        except CONNECTION_ERRORS:  # the tenant lookup met an outage: 503, not a debug page
            return database_unavailable()
        except _Suspended as suspended:
            return JsonResponse(suspended_answer(suspended.tenant), status=403)

    def get_tenant(self, domain_model, hostname):
        if hostname.lower() in settings.PUBLIC_HOSTS:
            # No query: /healthz must answer even when the database does not.
            raise domain_model.DoesNotExist(hostname)
        tenant = tenant_for_host(host=hostname)
        if tenant is None:
            raise domain_model.DoesNotExist(hostname)
        if tenant.status == TenantStatus.SUSPENDED:
            raise _Suspended(tenant)
        return tenant

    def no_tenant_found(self, request, hostname):
        if hostname.lower() in settings.PUBLIC_HOSTS:
            self.setup_url_routing(request, force_public=True)
            return None
        raise Http404(f"No tenant for host {hostname!r}.")
