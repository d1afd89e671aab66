import os

from django.core.asgi import get_asgi_application

from core import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# Before the application loads its middleware and opens a connection (see config/wsgi.py).
tracing.configure("tenantflow-web")
application = get_asgi_application()
