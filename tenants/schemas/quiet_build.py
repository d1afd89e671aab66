"""A schema built from the stored template in the background, quietly: in small commits.

One transaction that creates a whole large schema costs every other connection to the
database on its next queries: they read their cached catalog entries again, much less so
after the same build committed in small batches (``bench/catalog_churn.py`` measures both;
docs/benchmarks.md). The likely reason: PostgreSQL's shared invalidation queue holds 4,096
messages, and a connection that falls that far behind drops its whole cache instead of the
entries that changed. A build nobody
waits for (a pool refill) is made that way, in a scratch schema the caller renames.
"""

import functools

import psycopg

from core.db import libpq_params
from tenants.databases import schema_database
from tenants.models import SchemaTemplate
from tenants.schemas.scratch import run_batch, scratch_schema
from tenants.schemas.sql_statements import statements

QUIET_COMMIT = 50


@functools.lru_cache(maxsize=4)  # one template per code version: split once, not per build
def _commits(script: str) -> tuple[str, ...]:
    found = list(statements(script))
    return tuple("\n".join(found[i : i + QUIET_COMMIT]) for i in range(0, len(found), QUIET_COMMIT))


def build_quietly(template: SchemaTemplate) -> str:
    """Build the stored template into a new scratch schema on a connection of its own,
    committing every QUIET_COMMIT statements; returns the scratch schema's name, for the
    caller to rename (``ALTER SCHEMA ... RENAME``) in its own transaction. A failed build
    drops its scratch schema; one the caller does not rename is debris (``drop_build_debris``
    drops it once it is BUILD_DEBRIS_AGE old)."""
    with (
        psycopg.connect(**libpq_params(schema_database()), autocommit=True) as side,
        scratch_schema(side) as scratch,
    ):
        for commit in _commits(template.script):
            run_batch(side, commit.replace(SchemaTemplate.PLACEHOLDER, scratch))
    return scratch
