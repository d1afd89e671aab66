"""The base of the commands that hold a Temporal client."""

import logging
import math
import os
import sys
import traceback
from argparse import ArgumentTypeError

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core import tracing


def seconds(value: str) -> float:
    """An option's number of seconds (``type=seconds``): finite, 0 or more. Anything else
    is refused naming the option and the value (a ``CommandError`` from ``call_command``,
    a usage error from the command line)."""
    try:
        number = float(value)
    except ValueError:
        raise ArgumentTypeError(f"expected a number of seconds, got {value!r}.") from None
    if not math.isfinite(number) or number < 0:
        raise ArgumentTypeError(f"expected a number of seconds, 0 or more; got {value!r}.")
    return number


class TemporalCommand(BaseCommand):
    """A command whose process ends with ``os._exit`` once it has finished and flushed.

    The SDK's Rust runtime keeps threads that can crash the interpreter while it finalizes
    (a SIGSEGV after a clean shutdown: temporalio/sdk-python#300), which would turn a
    worker's exit 0 into -11 for the supervisor. Everything is done by then: connections
    are closed and output flushed first. Only the ``manage.py`` entry point does this;
    ``call_command`` returns as usual.

    A command that names its ``trace_service`` turns tracing on as ``OTEL_*`` asks before
    anything else runs (no client or database connection may predate the instrumentation),
    and exports the spans still batched before that exit.
    """

    trace_service: str | None = None

    def execute(self, *args, **options):
        if self.trace_service:
            try:
                tracing.configure(self.trace_service)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from exc
        return super().execute(*args, **options)

    def run_from_argv(self, argv):
        code = 0
        try:
            super().run_from_argv(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except KeyboardInterrupt:
            code = 130
        except BaseException:
            traceback.print_exc()
            code = 1
        connections.close_all()
        tracing.shutdown()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
