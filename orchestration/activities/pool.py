"""Schema pool activities (``tenants.pool``). Safe to run twice: a fill builds only while
the pool is short, a prune drops only what must go."""

from orchestration.activities import django_activity
from tenants import pool


@django_activity
def schema_pool_fill_one() -> str | None:
    """Builds one pool schema (returns its name); None once there is nothing to build."""
    return pool.fill_one()


@django_activity
def schema_pool_prune() -> list[str]:
    """Drops stale, surplus and orphaned pool schemas; returns their names."""
    return pool.prune()


REFILL = [schema_pool_fill_one, schema_pool_prune]
