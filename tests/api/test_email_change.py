"""Changing one's email: the password asked again, the new address confirmed by its
emailed token before it takes effect, the old address told; each refusal; the emails sent
by the worker, end to end."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import EmailChange, Token, TokenPurpose, User
from accounts.services import token_raw_value
from accounts.services.passwords import password_reset_confirm, password_reset_request
from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import AccountEmailWorkflow
from tests.api.conftest import bearer
from tests.factories import PASSWORD, TokenFactory, UserFactory
from tests.kit import wait_until
from tests.workers import BackgroundWorker

CHANGE = "/api/v1/me/email/"
CONFIRM = "/api/v1/auth/email-change/confirm/"
LOGIN = "/api/v1/auth/token/"
ME = "/api/v1/me/"


def change_rows():
    return list(OutboxEntry.objects.filter(workflow_type=workflow_type(AccountEmailWorkflow)))


def ask(api, token, email="new@example.com", password=PASSWORD):
    return api.post(CHANGE, {"email": email, "password": password}, **bearer(token.raw))


def confirm_token(user) -> str:
    change = EmailChange.objects.filter(user=user).latest("created_at")
    return token_raw_value(change.token)


@pytest.fixture
def ada(db):
    user = UserFactory(email="ada@example.com")
    return user, TokenFactory(user=user)


def test_the_email_changes_only_once_the_new_address_confirms(api, ada):
    user, token = ada
    asked = ask(api, token, email="New@Example.com")
    assert asked.status_code == 202, asked.content
    assert "new@example.com" in asked.json()["detail"]
    assert User.objects.get(pk=user.pk).email == "ada@example.com"  # not yet
    (row,) = change_rows()
    change = EmailChange.objects.get()
    assert row.arguments == {
        "kind": "email_change",
        "token_id": change.token_id,
        "retry_window_seconds": row.arguments["retry_window_seconds"],
    }
    assert "example.com" not in f"{row.workflow_id} {row.arguments}"
    done = api.post(CONFIRM, {"token": confirm_token(user)})
    assert done.status_code == 200, done.content
    assert done.json() == {"email": "new@example.com"}
    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert user.email_verified_at is not None
    assert api.post(LOGIN, {"email": "new@example.com", "password": PASSWORD}).status_code == 200
    assert api.post(LOGIN, {"email": "ada@example.com", "password": PASSWORD}).status_code == 400
    assert api.get(ME, **bearer(token.raw)).json()["email"] == "new@example.com"
    again = api.post(CONFIRM, {"token": confirm_token(user)})
    assert again.status_code == 400
    assert set(again.json()) == {"token"}


def test_a_wrong_password_is_refused_and_counts_towards_the_lockout(api, ada, settings):
    settings.AXES_FAILURE_LIMIT = 2
    _user, token = ada
    wrong = ask(api, token, password="not the password")
    assert wrong.status_code == 400
    assert wrong.json() == {"password": ["Wrong password."]}
    assert ask(api, token, password="not the password").status_code == 429  # the limit
    locked = ask(api, token)  # the right password, locked out all the same
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.json()["detail"]
    assert change_rows() == []
    assert not EmailChange.objects.exists()


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("taken@example.com", "This email cannot be used."),
        ("TAKEN@example.com", "This email cannot be used."),
        ("ADA@example.com", "This is already the account's email."),
    ],
)
def test_an_address_in_use_is_refused_with_the_signup_words(api, ada, email, message):
    UserFactory(email="taken@example.com")
    _, token = ada
    refused = ask(api, token, email=email)
    assert refused.status_code == 400
    assert refused.json() == {"email": [message]}
    assert change_rows() == []


def test_an_address_taken_before_the_confirmation_is_refused_then(api, ada):
    user, token = ada
    assert ask(api, token).status_code == 202
    UserFactory(email="new@example.com")
    raw = confirm_token(user)
    refused = api.post(CONFIRM, {"token": raw})
    assert refused.status_code == 400
    assert refused.json() == {"email": ["This email cannot be used."]}
    assert User.objects.get(pk=user.pk).email == "ada@example.com"
    assert EmailChange.objects.get().token.used_at is None  # nothing changed


def test_a_newer_request_revokes_the_older_and_expired_tokens_are_refused(api, ada, settings):
    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    user, token = ada
    assert ask(api, token, email="first@example.com").status_code == 202
    first = confirm_token(user)
    assert ask(api, token, email="second@example.com").status_code == 202
    second = confirm_token(user)
    assert api.post(CONFIRM, {"token": first}).status_code == 400
    Token.objects.filter(purpose=TokenPurpose.EMAIL_CHANGE).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api.post(CONFIRM, {"token": second}).status_code == 400
    assert User.objects.get(pk=user.pk).email == "ada@example.com"


def test_a_password_reset_cancels_a_pending_change(api, ada):
    user, token = ada
    assert ask(api, token).status_code == 202
    raw = confirm_token(user)
    password_reset_confirm(
        raw_token=token_raw_value(password_reset_request(email=user.email)),
        password="a brand new passphrase 42",
    )
    assert api.post(CONFIRM, {"token": raw}).status_code == 400
    assert User.objects.get(pk=user.pk).email == "ada@example.com"


def test_one_address_gets_one_confirmation_a_minute(api, ada):
    _, token = ada
    other = TokenFactory()
    assert ask(api, token).status_code == 202
    held = api.post(CHANGE, {"email": "new@example.com", "password": PASSWORD}, **bearer(other.raw))
    assert held.status_code == 429
    assert int(held["Retry-After"]) > 0
    assert len(change_rows()) == 1


def test_the_change_is_throttled_per_user(api, ada):
    _, token = ada
    statuses = [ask(api, token, password="wrong").status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]  # test settings: 5/minute


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        (CHANGE, {}, {"email", "password"}),
        (CHANGE, {"email": "nope", "password": PASSWORD}, {"email"}),
        (CHANGE, {"email": "new@example.com", "password": ""}, {"password"}),
        (CHANGE, {"email": "new@example.com", "password": 5}, {"password"}),
        (CONFIRM, {}, {"token"}),
        (CONFIRM, {"token": "unknown"}, {"token"}),
        (CONFIRM, {"token": 7}, {"token"}),
    ],
)
def test_bad_input_is_400_with_field_errors(api, ada, path, body, fields):
    _, token = ada
    answer = api.post(path, body, format="json", **bearer(token.raw))
    assert answer.status_code == 400, answer.content
    assert set(answer.json()) == fields


def test_asking_needs_a_token(api, db):
    assert api.post(CHANGE, {"email": "x@example.com", "password": PASSWORD}).status_code == 401


@pytest.mark.usefixtures("queue_prefix")
def test_the_new_address_confirms_from_its_email_and_the_old_is_told(
    api, temporal, transactional_db
):
    user = UserFactory(email="ada@example.com")
    token = TokenFactory(user=user)
    with BackgroundWorker(temporal, kinds=("jobs",)):
        assert ask(api, token).status_code == 202
        wait_until(lambda: len(mail.outbox) == 2, timeout=30, what="both emails")
    confirmation, notice = mail.outbox
    assert confirmation.to == ["new@example.com"]
    assert notice.to == ["ada@example.com"]
    assert "new@example.com" in notice.body
    assert "password-reset" in notice.body
    raw = confirmation.body.split("\n\n")[1].strip()
    assert raw not in notice.body
    assert api.post(CONFIRM, {"token": raw}).status_code == 200
    assert User.objects.get(pk=user.pk).email == "new@example.com"
