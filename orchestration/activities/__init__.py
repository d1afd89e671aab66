"""Activities: thin, idempotent wrappers over the apps' services.

Every activity is declared with ``django_activity``, which gives it

* Django's connection hygiene: before and after the activity, on whichever thread runs it,
  a connection broken by a database restart is dropped and a healthy one goes back to the
  pool;
* a clear failure for errors no retry can fix: a missing row, an invalid lifecycle move or
  invalid data become a non-retryable ``ApplicationError`` naming the problem;
* its run in every log line it writes, through any logger: ``workflow_id``, ``run_id`` and
  ``activity`` (``core.logs.log_context``), and a line when it completes or fails.

Tenant lifecycle activities are declared with ``tenant_step`` (in ``activities.tenants``),
which also records the run's progress on the tenant.
"""

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import close_old_connections
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.logs import log_context
from orchestration.errors import INVALID_INPUT, INVALID_STATE
from tenants.models import InvalidTransition, TenantIsActive
from tenants.schemas.copy import CopyUnavailable
from tenants.services.moves import MoveMismatch, MoveRefused

_PERMANENT = {
    ObjectDoesNotExist: INVALID_INPUT,
    ValidationError: INVALID_INPUT,
    InvalidTransition: INVALID_STATE,
    TenantIsActive: INVALID_STATE,
    MoveRefused: INVALID_STATE,
    MoveMismatch: INVALID_STATE,
    CopyUnavailable: INVALID_STATE,
}


STEP_PREFIX = "tenant_"
logger = logging.getLogger(__name__)


def step_name(activity_name: str) -> str:
    """A lifecycle step's name is its activity's, less the prefix: ``tenant_create_schema``
    is step ``create_schema``. Sagas declare steps by activity; progress uses these names."""
    return activity_name.removeprefix(STEP_PREFIX)


def django_activity(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    heartbeat_every: float | None = None,
    tenant: bool = False,
):
    """``@activity.defn`` for a sync activity that uses the Django ORM.

    ``heartbeat_every`` (seconds): heartbeat from a side thread while the activity runs, for
    long single calls (DDL, migrations) under a heartbeat timeout: a killed worker is then
    noticed within the heartbeat timeout instead of the whole start-to-close timeout.

    ``tenant``: the first argument is a tenant id, logged as ``tenant_id`` on every line.
    """

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            info = activity.info()
            with log_context(
                workflow_id=info.workflow_id,
                run_id=info.workflow_run_id,
                activity=info.activity_type,
                tenant_id=args[0] if tenant and args else None,
            ):
                return run(*args, **kwargs)

        def run(*args, **kwargs):
            close_old_connections()
            # A local activity cannot heartbeat: a killed worker shows as the workflow
            # task's timeout, and the step runs again.
            beats = heartbeat_every and not activity.info().is_local
            beating = _heartbeat_in_background(heartbeat_every) if beats else None
            started = time.monotonic()
            try:
                result = func(*args, **kwargs)
            except ApplicationError as exc:
                how = "activity failed for good: %s: %s"
                if not exc.non_retryable:
                    how = "activity failed (%s: %s); retried"
                logger.warning(how, exc.type, exc)
                raise
            except tuple(_PERMANENT) as exc:
                failure = as_failure(exc)
                logger.warning("activity failed for good: %s: %s", failure.type, exc)
                raise failure from exc
            except Exception as exc:
                logger.warning("activity failed (%s: %s); retried", type(exc).__name__, exc)
                raise
            finally:
                if beating is not None:
                    beating.set()
                close_old_connections()
            logger.info("activity done in %.3fs", time.monotonic() - started)
            return result

        return activity.defn(name=name or func.__name__)(wrapper)

    return decorate(fn) if fn is not None else decorate


def as_failure(exc: Exception, *details) -> ApplicationError:
    """``exc`` as the activity's failure: an error no retry can fix (a missing row, an invalid
    lifecycle move, invalid data) is non-retryable, with its kind as type; any other keeps
    its class name as type and is retried. ``details`` go with it (to the workflow)."""
    if isinstance(exc, ApplicationError):
        kind, message, retry = exc.type, exc.message, not exc.non_retryable
    else:
        kind = next((t for cls, t in _PERMANENT.items() if isinstance(exc, cls)), None)
        message, retry = str(exc) or type(exc).__name__, kind is None
    return ApplicationError(
        message, *details, type=kind or type(exc).__name__, non_retryable=not retry
    )


def _heartbeat_in_background(every: float) -> threading.Event:
    """Heartbeat every ``every`` seconds until the returned event is set."""
    done = threading.Event()
    context = contextvars.copy_context()  # carries the activity's context to the thread

    def beat() -> None:
        while not done.wait(every):
            activity.heartbeat()

    threading.Thread(target=context.run, args=(beat,), daemon=True).start()
    return done
