"""A schema built from the stored template: its dump replayed in one transaction, or split
over several connections at once when that pays."""

import contextlib
import functools
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
from django.db import transaction
from psycopg import sql
from psycopg_pool import PoolTimeout

from core.db import libpq_params
from tenants.databases import schema_connection, schema_database
from tenants.models import SchemaTemplate
from tenants.schemas.scratch import run_batch, scratch_schema
from tenants.schemas.sql_statements import statements
from tenants.validators import validate_schema_name

logger = logging.getLogger(__name__)


def replay_template(template: SchemaTemplate, name: str) -> None:
    """Create schema ``name`` as the stored template's dump replayed, in one transaction
    (the caller's, when it has one)."""
    script = template.script.replace(SchemaTemplate.PLACEHOLDER, name)
    with transaction.atomic(using=schema_database()), schema_connection().cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        cursor.execute(script)


# --- building a schema on several connections ----------------------------------------------
#
# Replaying a large app's template is DDL the database runs on one core, one backend's time
# for every table, index and constraint (docs/benchmarks.md). Most of it touches one
# table at a time, so ``build_from_template`` splits the dump: the statements before its
# first foreign key (tables, identities, rows, keys, indexes) go in groups that share no
# object to several connections at once, in a scratch schema, each connection's share in a
# transaction of its own; then one transaction runs the rest (foreign keys and what follows
# them, in order) and renames the scratch schema to the tenant's. So a schema of that name
# is always complete, and it exists from that commit on (as after migrations, which also
# commit as they go), whatever the caller's transaction does. Scratch schemas: ``scratch``.

# Below this many statements before the first foreign key, one transaction is quicker than
# the connections and commits a split costs.
PARALLEL_FROM = 100
# How long a build waits for each spare pooled connection before building on one instead.
_BORROW_TIMEOUT = 0.05
_MENTION = re.compile(re.escape(SchemaTemplate.PLACEHOLDER) + r'\.("(?:[^"]|"")+"|\w+)')


def build_plan(script: str, parts: int) -> tuple[tuple[str, ...], str] | None:
    """How to build ``script`` (a stored template's) on ``parts`` connections: one batch of
    statements per connection (statements that name a common object of the schema stay
    together, in order, on one connection) and the rest, from the first foreign key on.
    None when a split would not pay: too few statements, or one group holds most."""
    return _plan(script, parts, PARALLEL_FROM)


@functools.lru_cache(maxsize=4)  # one template per code version: parsed once, not per tenant
def _plan(script: str, parts: int, minimum: int) -> tuple[tuple[str, ...], str] | None:
    found = list(statements(script))
    cut = next((i for i, s in enumerate(found) if "FOREIGN KEY" in s.upper()), len(found))
    head, rest = found[:cut], found[cut:]
    if parts < 2 or len(head) < minimum:
        return None
    # Groups by union-find over the objects each statement names (a table and its identity
    # sequence, a type and the tables using it, a view and its tables...).
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    named = []
    for statement in head:
        objects = [m.group(1) for m in _MENTION.finditer(statement)]
        if not objects:
            return None  # names nothing of the schema: where it must run is unknown
        for other in objects[1:]:
            parent[root(other)] = root(objects[0])
        named.append(objects[0])
    groups: dict[str, list[int]] = {}
    for index, first in enumerate(named):
        groups.setdefault(root(first), []).append(index)
    if max(len(g) for g in groups.values()) > len(head) / 2:
        return None
    batches: list[list[int]] = [[] for _ in range(parts)]
    for group in sorted(groups.values(), key=len, reverse=True):  # largest first, to the lightest
        min(batches, key=len).extend(group)
    return (
        tuple("\n".join(head[i] for i in sorted(batch)) for batch in batches if batch),
        "\n".join(rest),
    )


def build_from_template(template: SchemaTemplate, name: str, *, connections: int) -> None:
    """Create schema ``name`` from the stored template on up to ``connections`` connections
    at once (see above). Falls back to ``replay_template`` (in the caller's transaction) when
    the split would not pay or the connections cannot be had at once."""
    plan = build_plan(template.script, connections)
    if plan is None:
        replay_template(template, name)
        return
    batches, rest = plan
    validate_schema_name(name)
    with _side_connections(len(batches)) as sides:
        if sides is None:
            replay_template(template, name)
            return
        with scratch_schema(sides[0]) as scratch:
            named = [batch.replace(SchemaTemplate.PLACEHOLDER, scratch) for batch in batches]
            with ThreadPoolExecutor(len(batches)) as threads:
                runs = [
                    threads.submit(run_batch, side, batch)
                    for side, batch in zip(sides, named, strict=True)
                ]
                for run in runs:
                    run.result()
            rename = sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(scratch), sql.Identifier(name)
            )
            with sides[0].transaction():
                if rest:
                    sides[0].execute(rest.replace(SchemaTemplate.PLACEHOLDER, scratch))
                sides[0].execute(rename)


@contextlib.contextmanager
def _side_connections(count: int) -> Iterator[list[psycopg.Connection] | None]:
    """``count`` autocommit connections besides Django's, or None when they cannot all be had
    at once: borrowed from Django's pool when it has one (never waiting for one: a busy
    pool means a busy worker, better served by one connection), else opened."""
    pool = getattr(schema_connection(), "pool", None)
    with contextlib.ExitStack() as stack:
        sides = []
        try:
            for _ in range(count):
                if pool is not None:
                    side = stack.enter_context(pool.connection(timeout=_BORROW_TIMEOUT))
                else:
                    side = stack.enter_context(psycopg.connect(**libpq_params(schema_database())))
                side.autocommit = True
                sides.append(side)
        except (psycopg.Error, PoolTimeout):
            logger.info("no %d spare database connections: the template replayed on one", count)
            yield None
            return
        yield sides
