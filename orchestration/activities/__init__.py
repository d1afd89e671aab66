"""Activities: thin, idempotent wrappers over the apps' services.

Every activity is declared with ``django_activity`` so that it runs with Django's
connection hygiene: a connection broken by a database restart, or past CONN_MAX_AGE, is
dropped before the activity and after it, on whichever pool thread runs it.
"""

import functools
from collections.abc import Callable

from django.db import close_old_connections
from temporalio import activity


def django_activity(fn: Callable | None = None, *, name: str | None = None):
    """``@activity.defn`` for a sync activity that uses the Django ORM."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            close_old_connections()
            try:
                return func(*args, **kwargs)
            finally:
                close_old_connections()

        return activity.defn(name=name or func.__name__)(wrapper)

    return decorate(fn) if fn is not None else decorate
