"""Scratch schemas: where a build makes a schema before renaming it to the tenant's.

A scratch schema is ``build_<epoch seconds>_<hex>``: no tenant row points at one, so
nothing lists it. A failed build drops its own; one a killed process left behind is
dropped by the next build (and by the pool's prune) once it is BUILD_DEBRIS_AGE old.
"""

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator

import psycopg
from psycopg import sql

from core.db import libpq_params
from tenants.databases import schema_database

logger = logging.getLogger(__name__)

BUILD_PREFIX = "build_"
BUILD_DEBRIS_AGE = 15 * 60  # seconds; a build takes well under one


@contextlib.contextmanager
def scratch_schema(side: psycopg.Connection) -> Iterator[str]:
    """A new scratch schema made on ``side`` (autocommit), older builds' debris dropped
    first; dropped again if the block fails."""
    scratch = f"{BUILD_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:16]}"
    drop_build_debris(side)
    try:
        side.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(scratch)))
        yield scratch
    except BaseException:
        drop_scratch(scratch, side)
        raise


def run_batch(side: psycopg.Connection, batch: str) -> None:
    """Run ``batch`` on ``side`` (autocommit) in one transaction of its own."""
    with side.transaction():
        side.execute(batch)


def drop_scratch(scratch: str, side: psycopg.Connection | None = None) -> None:
    """Drop scratch schema ``scratch`` (a failed build's, or one its caller did not rename
    after all) on ``side``, or on a connection of its own; logged, not raised, if it cannot
    (a later build drops it as debris)."""
    try:
        with contextlib.ExitStack() as stack:
            if side is None:
                side = stack.enter_context(
                    psycopg.connect(**libpq_params(schema_database()), autocommit=True)
                )
            side.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(scratch))
            )
    except psycopg.Error:
        logger.warning("could not drop the scratch schema %s; a later build will", scratch)


def drop_build_debris(side: psycopg.Connection) -> list[str]:
    """Drop the scratch schemas of builds older than BUILD_DEBRIS_AGE (a killed process's),
    on ``side`` (autocommit); returns their names."""
    pattern = BUILD_PREFIX.replace("_", r"\_") + "%"
    found = side.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [pattern])
    dropped = []
    for (debris,) in found.fetchall():
        started = debris.removeprefix(BUILD_PREFIX).partition("_")[0]
        if started.isdigit() and time.time() - int(started) > BUILD_DEBRIS_AGE:
            side.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(debris)))
            dropped.append(debris)
            logger.info("dropped %s, the scratch schema of a build that did not finish", debris)
    return dropped
