"""Django's database settings for connections Django does not make itself, and deadlines
for the queries Django makes."""

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)

# Django's own objects among its connection parameters; everything else is libpq's.
_NOT_LIBPQ = {"cursor_factory", "context", "prepare_threshold"}


def libpq_params(using: str = DEFAULT_DB_ALIAS) -> dict[str, str]:
    """Database ``using``'s connection parameters as libpq keywords (host, port, TLS
    files, ``options``, a service name…), for a side connection (the relay's LISTEN) or a
    client program (``pg_dump``), so that they reach the database exactly as Django does."""
    params = connections[using].get_connection_params()
    return {key: str(value) for key, value in params.items() if key not in _NOT_LIBPQ and value}


def listen(channel: str, **defaults: str) -> psycopg.Connection:
    """A side connection (autocommit) that ``LISTEN``s on ``channel``, made with Django's
    connection parameters; ``defaults`` are libpq keywords that a configured value
    overrides (``connect_timeout="5"``). Raises ``psycopg.Error`` when it cannot be made."""
    listener = psycopg.connect(**{**defaults, **libpq_params()}, autocommit=True)
    try:
        listener.execute(f"LISTEN {channel}")
    except psycopg.Error:
        listener.close()
        raise
    return listener


class _Watchdog:
    """One daemon thread that ends the queries of blocks that overran their deadline.

    Past its deadline, a block whose connection has a command in progress gets it
    cancelled the way ``psql``'s Ctrl-C does (a cancel request to the server). A server that
    does not answer at all (stalled storage, a network partition, a stopped process: its
    kernel still acknowledges every packet, so neither TCP keepalives nor a server-side
    ``statement_timeout`` ever fire) gets ``GRACE`` seconds more, then the connection's socket
    is shut down: the blocked thread raises ``OperationalError`` and the pool discards the
    connection. Every command counts, also those Django's backend sends itself (django-tenants'
    ``SET search_path``).
    """

    GRACE = 1.0
    POLL = 0.1  # how often a block past its deadline is looked at again

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # token -> [when to look next, the block's connection getter, cancelled already]
        self._blocks: dict[int, list] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, connection_of: Callable[[], psycopg.Connection | None], at: float) -> int:
        with self._lock:
            token = next(self._tokens)
            self._blocks[token] = [at, connection_of, False]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="db-deadline", daemon=True)
                self._thread.start()
            self._wake.notify()
            return token

    def unwatch(self, token: int) -> None:
        with self._lock:
            self._blocks.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = [entry for entry in self._blocks.values() if entry[0] <= now]
                if not due:
                    nearest = min((e[0] for e in self._blocks.values()), default=now + 60)
                    self._wake.wait(timeout=max(0.0, nearest - now))
                    continue
                for entry in due:
                    entry[0] = now + self.POLL
            for entry in due:
                conn = entry[1]()
                if not _busy(conn):
                    continue
                if entry[2]:  # cancelled a grace ago and still running: cut it off
                    _cut_off(conn)
                else:
                    entry[2] = True
                    entry[0] = time.monotonic() + self.GRACE
                    _cancel(conn)


def _busy(conn: psycopg.Connection | None) -> bool:
    """Whether ``conn`` has a command in progress (read from another thread: libpq's state)."""
    if conn is None or conn.closed:
        return False
    return conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE


def _cancel(conn: psycopg.Connection) -> None:
    try:
        conn.cancel_safe(timeout=_Watchdog.GRACE / 2)
    except Exception:  # a stalled server does not answer; the socket goes after the grace
        logger.info("could not cancel a query past its deadline", exc_info=True)


def _cut_off(conn: psycopg.Connection) -> None:
    try:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # closed meanwhile: nothing is waiting on it any more
        return
    logger.warning("database did not answer within its deadline; connection dropped")


_watchdog = _Watchdog()
_local = threading.local()


class _Block:
    """A ``deadline`` block: the connection it watches is the wrapper's, or the one the pool
    is checking before lending it to this thread."""

    def __init__(self, wrapper) -> None:
        self.wrapper = wrapper
        self.checking: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection | None:
        return self.checking or self.wrapper.connection


@contextlib.contextmanager
def deadline(seconds: float, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Every command this thread's connection ``using`` runs inside the block must finish
    within ``seconds`` of the block's start; one still running then is cancelled, or its
    connection dropped when the server does not answer, and fails with ``OperationalError``.
    The pool's check of a connection before lending it counts (``check_connection``).
    ``seconds <= 0``: no limit. Costs nothing per query: one watch per block."""
    if seconds <= 0:
        yield
        return
    block, outer = _Block(connections[using]), getattr(_local, "block", None)
    token = _watchdog.watch(block.connection, time.monotonic() + seconds)
    _local.block = block
    try:
        yield
    finally:
        _local.block = outer
        _watchdog.unwatch(token)


def check_connection(conn: psycopg.Connection) -> None:
    """The pool's check of a connection before it lends it (``OPTIONS["pool"]["check"]``):
    psycopg_pool's own, bounded by the ``deadline`` block the borrowing thread is in."""
    from psycopg_pool import ConnectionPool

    block = getattr(_local, "block", None)
    if block is not None:
        block.checking = conn
    try:
        ConnectionPool.check_connection(conn)
    finally:
        if block is not None:
            block.checking = None
