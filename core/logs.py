"""Structured logs: what every log line carries, and what it must never carry.

* ``log_context(**fields)`` binds fields (``tenant_id``, ``workflow_id``, ``run_id``,
  ``request_id``…) to every line logged in the block, by any logger, on this thread or task
  (a ``contextvars.ContextVar``: activities on pool threads and requests on gunicorn threads
  each see their own).
* ``ContextFilter`` copies them onto each record, with ``trace_id`` and ``span_id`` when an
  OpenTelemetry span is current (core/tracing.py); ``RedactFilter`` masks email
  addresses, bearer tokens, ``password=…`` / ``token=…`` pairs and API-token-shaped strings
  in the message and its arguments.
* ``JsonFormatter``: one JSON object per line (production); ``TextFormatter``: a readable
  line with the same fields (development). Both redact the whole line once more, so a
  traceback or an ``extra`` field cannot leak what the filter did not see.
* ``RequestIdMiddleware``: every request gets a ``request_id`` (the caller's
  ``X-Request-ID`` when it is short and safe, else a new one), logged on each of its lines,
  returned in the ``X-Request-ID`` response header, and one access line per request.

The settings build ``LOGGING`` with ``logging_config(level, fmt)``.
"""

import contextlib
import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator

FIELDS = ("tenant_id", "workflow_id", "run_id", "activity", "request_id", "trace_id", "span_id")
FORMATS = ("json", "text")

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (None values are skipped) to every line logged inside the block."""
    current = _context.get() or {}
    token = _context.set({**current, **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


# Imported here, with this module, never while a record is logged: a line logged from inside
# a workflow would otherwise import OpenTelemetry in Temporal's workflow sandbox, which
# refuses its read of os.environ (and the line would be lost with the workflow task).
try:
    from opentelemetry import trace
except ImportError:  # pragma: no cover - a dependency; kept optional for this module
    trace = None


def _trace_ids() -> tuple[str, str]:
    """The current OpenTelemetry span's trace id (32 hex digits) and span id (16), or two
    empty strings without a valid span (always so with tracing off: no span is ever made)."""
    if trace is None:
        return "", ""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return "", ""
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


class ContextFilter(logging.Filter):
    """Puts the bound fields on the record (empty string where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get() or {}
        for field in FIELDS:
            if not getattr(record, field, ""):
                setattr(record, field, bound.get(field, ""))
        if not record.trace_id:
            record.trace_id, record.span_id = _trace_ids()
        return True


# Email addresses; "Bearer <token>"; password=…, token: …, "secret": "…" and the like; and
# strings shaped like our API tokens (secrets.token_urlsafe(32), or the base64url HMAC of
# email tokens): 32+ URL-safe characters with an upper-case letter and a digit — workflow
# ids, UUIDs and hex digests are lower-case and stay readable.
_SECRETS = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]{8,}"), r"\1 [redacted]"),
    (
        re.compile(
            r"""(?i)(["']?\b(?:password|passwd|secret|token|api_key|apikey|authorization)"""
            r"""\w*["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}]+)"""
        ),
        r"\1[redacted]",
    ),
    (
        re.compile(r"(?<![\w-])(?=[\w-]*[A-Z])(?=[\w-]*[0-9])[A-Za-z0-9_-]{32,}(?![\w-])"),
        "[token]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Masks secrets in the message: formats it with its arguments, then redacts the result
    (an argument may be an email address or a token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        record.msg, record.args = redact(message), None
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [field=value …]`` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{f}={getattr(record, f)}" for f in FIELDS if getattr(record, f, ""))
        if fields:
            head, sep, rest = line.partition("\n")
            line = f"{head} [{fields}]{sep}{rest}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the known
    context fields, and ``exception`` (the traceback) when there is one. Times are UTC."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            if value := getattr(record, field, ""):
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def logging_config(level: str, fmt: str) -> dict:
    """``LOGGING`` for ``level`` and ``fmt`` (json or text): one console handler on the root
    logger, with the context and redaction filters."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": ContextFilter},
            "redact": {"()": RedactFilter},
        },
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["context", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"temporalio": {"level": "WARNING"}},
    }


# --- requests ------------------------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_logger = logging.getLogger("tenantflow.access")


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is 1-64 safe characters, else a new one."""
    if value and _SAFE_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in ``MIDDLEWARE``: binds ``request_id`` for every line the request logs, sends
    it back in ``X-Request-ID``, and logs one access line (method, path, status, time;
    never the query string, which may carry a token)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        started = time.perf_counter()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            access_logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        response[REQUEST_ID_HEADER] = request_id
        return response
