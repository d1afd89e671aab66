"""The base of the commands that hold a Temporal client."""

import logging
import os
import sys
import traceback

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core import tracing


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
