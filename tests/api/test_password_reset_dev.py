"""A password reset as on a developer machine: `make dev`'s web server and a worker with the
local settings, which print emails to the worker's log (the console backend). The token is
read from that log; the old API token answers 401 afterwards and the new password logs in;
an unknown address gets the very same answer."""

import email
import http.client
import json
import re

from accounts.models import User
from tests.kit import wait_until

OLD = "the old passphrase 2026"
NEW = "the new passphrase 2027"
LOCAL = {"DJANGO_SETTINGS_MODULE": "config.settings.local", "TENANT_SCHEMA_POOL_SIZE": "0"}


def call(port: int, method: str, path: str, body: dict | None = None, token: str = ""):
    """(status, body bytes) of one request to the server on ``port``."""
    connection = http.client.HTTPConnection("localhost", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, json.dumps(body) if body else None, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_password_reset_end_to_end_from_the_email_in_the_dev_log(
    empty_database_cache, dev_web_server, start_worker, prefix, settings
):
    # Hashed as the local settings hash (PBKDF2), so that the dev server can check it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    User.objects.create_user("ada@example.com", OLD)
    port, web_log = dev_web_server(TEMPORAL_QUEUE_PREFIX=prefix, **LOCAL)
    _, worker_log = start_worker("--kind", "jobs", **LOCAL)

    status, body = call(
        port, "POST", "/api/v1/auth/token/", {"email": "ada@example.com", "password": OLD}
    )
    assert status == 200, body
    old_token = json.loads(body)["token"]
    known = call(port, "POST", "/api/v1/auth/password-reset/", {"email": "ada@example.com"})
    unknown = call(port, "POST", "/api/v1/auth/password-reset/", {"email": "bob@example.com"})
    assert known == unknown
    assert known[0] == 202

    def emailed_token() -> str | None:
        """The token of the reset email the console backend printed (quoted-printable)."""
        printed = worker_log.read_text(errors="replace")
        for block in re.findall(r"(Content-Type: .*?)\n-{79}\n", printed, flags=re.S):
            message = email.message_from_string(block)
            if message["Subject"] == "Reset your password":
                assert message["To"] == "ada@example.com"
                return message.get_payload(decode=True).decode().split("\n\n")[1].strip()
        return None

    raw = wait_until(emailed_token, timeout=60, what="the reset email in the worker's log")
    assert worker_log.read_text().count("Subject: Reset your password") == 1  # only Ada's
    status, body = call(
        port, "POST", "/api/v1/auth/password-reset/confirm/", {"token": raw, "password": NEW}
    )
    assert status == 200, body
    assert call(port, "GET", "/api/v1/me/", token=old_token)[0] == 401
    status, _ = call(
        port, "POST", "/api/v1/auth/token/", {"email": "ada@example.com", "password": NEW}
    )
    assert status == 200
    status, _ = call(
        port, "POST", "/api/v1/auth/token/", {"email": "ada@example.com", "password": OLD}
    )
    assert status == 400
    status, _ = call(
        port, "POST", "/api/v1/auth/password-reset/confirm/", {"token": raw, "password": NEW}
    )
    assert status == 400  # used once
    assert raw not in web_log.read_text()
