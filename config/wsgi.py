import os

from django.core.wsgi import get_wsgi_application

from core import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# Before the application loads its middleware and opens a connection: tracing (when OTEL_*
# asks for it) adds a middleware and wraps new database connections.
tracing.configure("tenantflow-web")
application = get_wsgi_application()
