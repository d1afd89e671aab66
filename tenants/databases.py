"""Where tenant schemas live: the databases of ``TENANT_DATABASES``.

``default`` holds the shared data (users, tenants, domains, the outbox) and tenant schemas;
every other alias of ``TENANT_DATABASES`` (``TENANT_DATABASE_URLS``) holds tenant schemas
only. Each tenant records its database in ``Tenant.database``.

- ``place_tenant``: the database a new tenant goes to, by the documented policy.
- ``on_database``: the database that schema work (``tenants.schemas``, the pool) runs on
  inside the block; ``schema_connection`` / ``schema_database`` name it. Outside any block it
  is ``default``.
- ``TenantDatabaseRouter``: the ORM's queries of tenant apps' models go to the database of
  the tenant the default connection is set to (``connection.set_tenant``: the routing
  middleware, ``tenant_context``; ``schema_context(name)`` costs one lookup of the schema's
  tenant per block); shared models stay in ``default``. Migrations: the shared
  apps in ``default``'s public schema only, the tenant apps in the tenant schemas of every
  tenant database.
"""

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Count
from django_tenants.routers import TenantSyncRouter
from django_tenants.utils import get_public_schema_name

_working_on: ContextVar[str] = ContextVar("tenant_schema_database", default=DEFAULT_DB_ALIAS)


class UnknownDatabase(ValueError):
    def __init__(self, alias: str) -> None:
        known = ", ".join(settings.TENANT_DATABASES)
        super().__init__(f"{alias!r} is not a tenant database (TENANT_DATABASES: {known}).")


def tenant_databases() -> list[str]:
    """The aliases that hold tenant schemas, ``default`` first."""
    return list(settings.TENANT_DATABASES)


def open_databases() -> list[str]:
    """The tenant databases new tenants may be placed in."""
    return [alias for alias, opts in settings.TENANT_DATABASES.items() if opts["OPEN"]]


def require_database(alias: str) -> str:
    if alias not in settings.TENANT_DATABASES:
        raise UnknownDatabase(alias)
    return alias


def tenants_per_database() -> dict[str, int]:
    """{alias: tenants not deleted} for every tenant database (one GROUP BY)."""
    from tenants.models import Tenant, TenantStatus

    rows = (
        Tenant.objects.exclude(status=TenantStatus.DELETED)
        .order_by()
        .values_list("database")
        .annotate(n=Count("pk"))
    )
    counts = dict.fromkeys(tenant_databases(), 0)
    counts.update(rows)
    return counts


def place_tenant() -> str:
    """The database for a new tenant: among the open ones, the one with the fewest tenants
    (not deleted) for its weight (``TENANT_DATABASE_WEIGHTS``: weight 2 takes twice the
    tenants of weight 1); ties go to the first in ``TENANT_DATABASES``' order. With one open
    database, no query."""
    candidates = open_databases()
    if len(candidates) == 1:
        return candidates[0]
    counts = tenants_per_database()
    weight = {alias: settings.TENANT_DATABASES[alias]["WEIGHT"] for alias in candidates}
    return min(
        candidates, key=lambda alias: (counts[alias] / weight[alias], candidates.index(alias))
    )


@contextlib.contextmanager
def on_database(alias: str) -> Iterator:
    """Schema work in the block (create, migrate, drop, pool) runs on database ``alias``;
    yields its connection."""
    token = _working_on.set(require_database(alias))
    try:
        yield connections[alias]
    finally:
        _working_on.reset(token)


def schema_database() -> str:
    return _working_on.get()


def schema_connection():
    """The connection of the database schema work runs on (``on_database``)."""
    return connections[_working_on.get()]


@functools.cache
def _tenant_only_apps() -> frozenset[str]:
    from django.apps import apps

    router = TenantSyncRouter()
    return frozenset(
        config.label
        for config in apps.get_app_configs()
        if router.app_in_list(config.label, settings.TENANT_APPS)
        and not router.app_in_list(config.label, settings.SHARED_APPS)
    )


def _database_of_schema(schema_name: str) -> str:
    """The database of the tenant whose schema is ``schema_name`` (``default`` for the
    public schema and the template); remembered on the connection's tenant object for the
    block that set it."""
    from tenants.models import Tenant

    if schema_name == get_public_schema_name():
        return DEFAULT_DB_ALIAS
    found = Tenant.objects.filter(schema_name=schema_name).values_list("database", flat=True)
    return found.first() or DEFAULT_DB_ALIAS


class TenantDatabaseRouter(TenantSyncRouter):
    """Routes tenant apps' models to the current tenant's database (module docstring)."""

    def _tenant_database(self, model) -> str | None:
        if model._meta.app_label not in _tenant_only_apps():
            return None
        tenant = connection.tenant
        alias = getattr(tenant, "database", None)
        if alias is None:  # schema_context(name): the schema's name only
            alias = tenant.database = _database_of_schema(tenant.schema_name)
        if alias != DEFAULT_DB_ALIAS:
            target = connections[alias]
            if target.schema_name != tenant.schema_name:
                target.set_tenant(tenant)
        return alias

    def db_for_read(self, model, **hints):
        return self._tenant_database(model)

    def db_for_write(self, model, **hints):
        return self._tenant_database(model)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db not in settings.TENANT_DATABASES:
            return False
        if connections[db].schema_name == get_public_schema_name():
            if db != DEFAULT_DB_ALIAS:
                return False  # a tenant database's public schema holds no shared tables
            apps_list = settings.SHARED_APPS
        else:
            apps_list = settings.TENANT_APPS
        return None if self.app_in_list(app_label, apps_list) else False
