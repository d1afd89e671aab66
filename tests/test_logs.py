"""Structured logs: JSON lines with their context, request ids, and no secrets in any line."""

import io
import json
import logging
import subprocess
import sys

import pytest
from django.test import RequestFactory

from core.logs import (
    ContextFilter,
    JsonFormatter,
    RedactFilter,
    RequestIdMiddleware,
    TextFormatter,
    log_context,
    redact,
)
from devstack.localservices import PROJECT_DIR


class Captured:
    """A handler on the root logger formatting as production does (JSON, both filters)."""

    def __init__(self, formatter: logging.Formatter | None = None):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter or JsonFormatter())
        self.handler.addFilter(ContextFilter())
        self.handler.addFilter(RedactFilter())

    def __enter__(self):
        root = logging.getLogger()
        self.level = root.level
        root.setLevel(logging.INFO)
        root.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]


def test_json_line_has_level_logger_message_and_bound_fields():
    with Captured() as logs, log_context(tenant_id="t-1", workflow_id="wf-1", run_id="r-1"):
        logging.getLogger("tenantflow.test").warning("hello %s", "world")
    (entry,) = logs.entries()
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "tenantflow.test"
    assert entry["message"] == "hello world"
    assert (entry["tenant_id"], entry["workflow_id"], entry["run_id"]) == ("t-1", "wf-1", "r-1")
    assert "request_id" not in entry  # unknown fields are left out


def test_text_lines_are_readable_and_carry_the_fields():
    with Captured(TextFormatter()) as logs, log_context(request_id="abc"):
        logging.getLogger("tenantflow.test").info("plain")
    assert logs.text.rstrip().endswith("INFO tenantflow.test: plain [request_id=abc]")


def test_tracebacks_stay_inside_the_one_json_line():
    with Captured() as logs:
        try:
            raise ValueError("boom for grace@example.com")
        except ValueError:
            logging.getLogger("tenantflow.test").exception("failed")
    (entry,) = logs.entries()
    assert "ValueError: boom for [email]" in entry["exception"]


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("user ada.lovelace+x@example.co.uk signed up", "ada.lovelace+x@example.co.uk"),
        ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
        ("login password=hunter2hunter2 failed", "hunter2hunter2"),
        ('{"password": "s3cret pass"}', "s3cret pass"),
        (
            "token X9sdf8Q2lkJ3nM4bV5cX6zA7sD8fG9hJ0kL1qW2e3R4 seen",
            "X9sdf8Q2lkJ3nM4bV5cX6zA7sD8fG9h",
        ),
    ],
)
def test_redaction_masks_secrets(text, hidden):
    assert hidden not in redact(text)


def test_redaction_keeps_ids_readable():
    line = "started TenantProvisioning tenant-provision-5f0c6a1e-8d2b-4a7e-9c1d-3b2a1f0e9d8c"
    assert redact(line) == line


def test_request_id_is_taken_when_safe_made_otherwise_and_returned():
    middleware = RequestIdMiddleware(lambda request: __import__("django").http.HttpResponse())
    factory = RequestFactory()
    given = middleware(factory.get("/", HTTP_X_REQUEST_ID="req-42.a:b_c"))
    assert given["X-Request-ID"] == "req-42.a:b_c"
    for unsafe in ("x" * 65, "a b", "<script>", ""):
        made = middleware(factory.get("/", HTTP_X_REQUEST_ID=unsafe))["X-Request-ID"]
        assert made != unsafe
        assert len(made) == 32


@pytest.mark.parametrize(
    ("settings_module", "env", "formatter"),
    [
        ("config.settings.test", {}, "text"),
        ("config.settings.local", {}, "text"),
        (
            "config.settings.production",
            {"SECRET_KEY": "s" * 50, "DATABASE_URL": "postgres://a@b/c"},
            "json",
        ),
        ("config.settings.test", {"LOG_FORMAT": "JSON"}, "json"),
    ],
)
def test_log_format_defaults_by_environment(settings_module, env, formatter):
    show = "from django.conf import settings; print(settings.LOGGING['handlers']['console']"
    show += "['formatter'])"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {show}"],
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": settings_module, **env},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == formatter
