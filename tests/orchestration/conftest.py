# The browser tests here use the same Chromium as the tenant admin's (installed on demand).
from tests.tenants.conftest import chromium_path  # noqa: F401
