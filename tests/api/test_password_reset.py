"""Resetting a forgotten password: the same answer and the same statements whether or not
the address has an account; the emailed token used once sets the password and revokes
every API token; each refusal; the email sent by the worker, end to end."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.api.auth import RESET_ANSWER
from accounts.models import Token, TokenPurpose, User
from accounts.services import token_raw_value
from accounts.services.passwords import password_reset_request
from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import AccountEmailWorkflow
from tests.api.conftest import bearer
from tests.factories import PASSWORD, TokenFactory, UserFactory
from tests.kit import wait_until
from tests.workers import BackgroundWorker

RESET = "/api/v1/auth/password-reset/"
CONFIRM = "/api/v1/auth/password-reset/confirm/"
LOGIN = "/api/v1/auth/token/"
ME = "/api/v1/me/"
NEW_PASSWORD = "another long passphrase 456"
EMAILS = workflow_type(AccountEmailWorkflow)


def email_rows():
    return list(OutboxEntry.objects.filter(workflow_type=EMAILS))


def reset_token(user) -> Token:
    return Token.objects.get(user=user, purpose=TokenPurpose.PASSWORD_RESET, revoked_at=None)


@pytest.mark.django_db
def test_known_and_unknown_addresses_get_the_same_answer_and_only_one_an_email(api):
    user = UserFactory(email="ada@example.com")
    known = api.post(RESET, {"email": "ADA@example.com"}, REMOTE_ADDR="10.0.0.1")
    unknown = api.post(RESET, {"email": "nobody@example.com"}, REMOTE_ADDR="10.0.0.2")
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert known.json() == {"detail": RESET_ANSWER}

    def headers(response):
        return sorted((k, v) for k, v in response.headers.items() if k != "X-Request-ID")

    assert headers(known) == headers(unknown)
    (row,) = email_rows()
    token = reset_token(user)
    assert row.arguments["token_id"] == token.pk
    assert row.arguments["kind"] == "password_reset"
    text = f"{row.workflow_id} {row.arguments}"
    assert "ada" not in text
    assert token_raw_value(token) not in text
    assert token.expires_at <= timezone.now() + timedelta(hours=1)


@pytest.mark.django_db(transaction=True)
def test_both_answers_run_the_same_statements():
    """The timing of a request is its statements (each a round trip), its hashing and its
    receivers: both paths run the same ones, the one without an account rolling its token
    and outbox row back at the end instead of keeping them (bench/password_reset_oracle.py
    times them). In a transaction of its own, as a request is."""
    UserFactory(email="ada@example.com")

    def statements(email: str) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            password_reset_request(email=email)
        return [re.sub(r'"s\d+_x\d+"', "S", " ".join(q["sql"].split()[:4])) for q in queries]

    known = statements("ada@example.com")
    unknown = statements("nobody@example.com")
    assert len(known) == len(unknown), (known, unknown)
    differ = [(k, u) for k, u in zip(known, unknown, strict=True) if k != u]
    assert differ == [("RELEASE SAVEPOINT S", "ROLLBACK TO SAVEPOINT S")], differ
    assert any(s.startswith('INSERT INTO "orchestration_outboxentry"') for s in unknown)
    assert not Token.objects.exclude(user__email="ada@example.com").exists()
    assert len(email_rows()) == 1


@pytest.mark.django_db
def test_a_new_password_revokes_every_api_token_and_the_token_works_once(api):
    user = UserFactory(email="ada@example.com")
    api_token, other = TokenFactory(user=user), TokenFactory(user=user)
    stranger = TokenFactory()
    assert api.post(RESET, {"email": "ada@example.com"}).status_code == 202
    raw = token_raw_value(reset_token(user))
    done = api.post(CONFIRM, {"token": raw, "password": NEW_PASSWORD})
    assert done.status_code == 200, done.content
    assert "detail" in done.json()
    for token in (api_token, other):
        assert api.get(ME, **bearer(token.raw)).status_code == 401
    assert api.get(ME, **bearer(stranger.raw)).status_code == 200
    assert api.post(LOGIN, {"email": user.email, "password": PASSWORD}).status_code == 400
    assert api.post(LOGIN, {"email": user.email, "password": NEW_PASSWORD}).status_code == 200
    again = api.post(CONFIRM, {"token": raw, "password": "yet another passphrase 789"})
    assert again.status_code == 400
    assert set(again.json()) == {"token"}


@pytest.mark.django_db
def test_a_refused_password_leaves_the_token_usable_and_nothing_changed(api):
    user = UserFactory(email="ada@example.com")
    api_token = TokenFactory(user=user)
    password_reset_request(email=user.email)
    raw = token_raw_value(reset_token(user))
    for weak in ("short", "12345678901", "password123", "ada@example.com"):
        refused = api.post(CONFIRM, {"token": raw, "password": weak})
        assert refused.status_code == 400
        assert set(refused.json()) == {"password"}, refused.json()
    assert api.get(ME, **bearer(api_token.raw)).status_code == 200
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)
    assert api.post(CONFIRM, {"token": raw, "password": NEW_PASSWORD}).status_code == 200


@pytest.mark.django_db
def test_unknown_expired_revoked_and_inactive_tokens_are_refused(api):
    user = UserFactory(email="ada@example.com")

    def refused(raw: str) -> None:
        answer = api.post(CONFIRM, {"token": raw, "password": NEW_PASSWORD})
        assert answer.status_code == 400
        assert answer.json() == {"token": ["Invalid, used or expired token."]}

    refused("no-such-token")
    password_reset_request(email=user.email)
    first = reset_token(user)
    Token.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused(token_raw_value(first))
    api_token = TokenFactory(user=user, purpose=TokenPurpose.API)
    refused(api_token.raw)  # an API token is no reset token
    User.objects.filter(pk=user.pk).update(is_active=False)
    Token.objects.filter(pk=first.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    refused(token_raw_value(first))
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


@pytest.mark.django_db
def test_a_newer_request_revokes_the_older_token(settings):
    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    user = UserFactory(email="ada@example.com")
    older = password_reset_request(email=user.email)
    newer = password_reset_request(email=user.email)
    older.refresh_from_db()
    assert older.revoked_at is not None
    assert newer.is_usable()


@pytest.mark.django_db
def test_an_inactive_account_gets_nothing(api):
    UserFactory(email="ada@example.com", is_active=False)
    assert api.post(RESET, {"email": "ada@example.com"}).status_code == 202
    assert email_rows() == []
    assert not Token.objects.filter(purpose=TokenPurpose.PASSWORD_RESET).exists()


@pytest.mark.django_db
def test_one_address_gets_one_email_a_minute_whoever_asks_and_the_answer_is_the_same(api):
    UserFactory(email="ada@example.com")
    answers = {
        api.post(RESET, {"email": "ada@example.com"}, REMOTE_ADDR=f"10.0.0.{n}").content
        for n in range(1, 4)
    }
    assert answers == {api.post(RESET, {"email": "x@example.com"}, REMOTE_ADDR="10.0.1.1").content}
    assert len(email_rows()) == 1


@pytest.mark.django_db
def test_reset_and_confirm_are_rate_limited_per_client(api):
    statuses = [api.post(RESET, {"email": "nobody@example.com"}).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]  # test settings: 3/minute
    statuses = [
        api.post(CONFIRM, {"token": "guess", "password": NEW_PASSWORD}).status_code
        for _ in range(6)
    ]
    assert statuses == [400] * 5 + [429]  # the verify scope: 5/minute
    assert "detail" in api.post(CONFIRM, {"token": "x", "password": "y"}).json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        (RESET, {}, {"email"}),
        (RESET, {"email": "not an address"}, {"email"}),
        (RESET, {"email": 42}, {"email"}),
        (RESET, ["ada@example.com"], {"non_field_errors"}),
        (CONFIRM, {}, {"token", "password"}),
        (CONFIRM, {"token": "", "password": NEW_PASSWORD}, {"token"}),
        (CONFIRM, {"token": "x" * 201, "password": NEW_PASSWORD}, {"token"}),
        (CONFIRM, {"token": "abc", "password": 12345678}, {"password"}),
        (CONFIRM, {"token": "a\x00b", "password": NEW_PASSWORD}, {"token"}),
    ],
)
def test_bad_input_is_400_with_field_errors(api, path, body, fields):
    answer = api.post(path, body, format="json")
    assert answer.status_code == 400, answer.content
    assert set(answer.json()) == fields


@pytest.mark.usefixtures("queue_prefix")
def test_the_emailed_token_resets_the_password_end_to_end(api, temporal, transactional_db):
    user = UserFactory(email="ada@example.com")
    api_token = TokenFactory(user=user)
    with BackgroundWorker(temporal, kinds=("jobs",)):
        assert api.post(RESET, {"email": "ada@example.com"}).status_code == 202
        wait_until(lambda: mail.outbox, timeout=30, what="the password reset email")
    (email,) = mail.outbox
    assert email.to == ["ada@example.com"]
    assert "/api/v1/auth/password-reset/confirm/" in email.body
    raw = email.body.split("\n\n")[1].strip()
    assert api.post(CONFIRM, {"token": raw, "password": NEW_PASSWORD}).status_code == 200
    assert api.get(ME, **bearer(api_token.raw)).status_code == 401
    assert api.post(LOGIN, {"email": user.email, "password": NEW_PASSWORD}).status_code == 200
