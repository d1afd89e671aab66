"""The base of the commands that hold a Temporal client."""

import logging
import os
import sys
import traceback

from django.core.management.base import BaseCommand
from django.db import connections


class TemporalCommand(BaseCommand):
    """A command whose process ends with ``os._exit`` once it has finished and flushed.

    The SDK's Rust runtime keeps threads that can crash the interpreter while it finalizes
    (a SIGSEGV after a clean shutdown: temporalio/sdk-python#300), which would turn a
    worker's exit 0 into -11 for the supervisor. Everything is done by then: connections
    are closed and output flushed first. Only the ``manage.py`` entry point does this;
    ``call_command`` returns as usual.
    """

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
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
