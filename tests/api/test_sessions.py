"""Logging out: one API token or all of a user's; the tokens a user holds, with when each
was last used (written at most once a minute per token)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Token, TokenPurpose
from tests.api.conftest import bearer
from tests.factories import TokenFactory, UserFactory

LOGOUT = "/api/v1/auth/logout/"
LOGOUT_ALL = "/api/v1/auth/logout-all/"
TOKENS = "/api/v1/auth/tokens/"
ME = "/api/v1/me/"

pytestmark = pytest.mark.django_db


def test_a_logged_out_token_answers_401_at_once_and_others_keep_working(api):
    user = UserFactory()
    mine, other = TokenFactory(user=user), TokenFactory(user=user)
    assert api.get(ME, **bearer(mine.raw)).status_code == 200
    response = api.post(LOGOUT, **bearer(mine.raw))
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(ME, **bearer(mine.raw)).status_code == 401
    assert api.post(LOGOUT, **bearer(mine.raw)).status_code == 401
    assert api.get(ME, **bearer(other.raw)).status_code == 200


def test_logout_all_revokes_every_api_token_of_the_user_only(api):
    user, stranger = UserFactory(), UserFactory()
    first, second = TokenFactory(user=user), TokenFactory(user=user)
    reset = TokenFactory(user=user, purpose=TokenPurpose.PASSWORD_RESET)
    theirs = TokenFactory(user=stranger)
    assert api.post(LOGOUT_ALL, **bearer(first.raw)).status_code == 204
    assert api.get(ME, **bearer(first.raw)).status_code == 401
    assert api.get(ME, **bearer(second.raw)).status_code == 401
    assert api.get(ME, **bearer(theirs.raw)).status_code == 200
    assert Token.objects.get(pk=reset.pk).revoked_at is None  # API tokens only


def test_logout_without_a_token_is_401_json(api):
    for path in (LOGOUT, LOGOUT_ALL):
        response = api.post(path)
        assert response.status_code == 401
        assert "detail" in response.json()
    assert api.get(TOKENS).status_code == 401


def test_the_token_list_shows_open_tokens_and_when_each_was_last_used(api):
    user = UserFactory()
    current, idle = TokenFactory(user=user), TokenFactory(user=user)
    TokenFactory(user=user, revoked_at=timezone.now())
    TokenFactory(user=user, ttl=-timedelta(seconds=1))
    TokenFactory(user=user, purpose=TokenPurpose.PASSWORD_RESET)
    TokenFactory()  # someone else's
    body = api.get(TOKENS, **bearer(current.raw)).json()
    listed = {t["prefix"]: t for t in body["tokens"]}
    assert set(listed) == {current.prefix, idle.prefix}
    assert listed[current.prefix]["current"] is True
    assert listed[current.prefix]["last_used_at"] is not None
    assert listed[idle.prefix] | {"current": False, "last_used_at": None} == listed[idle.prefix]
    assert all(current.raw not in str(t) for t in body["tokens"])


def test_last_used_is_written_at_most_once_a_minute_per_token(api):
    token = TokenFactory()

    def updates_of_a_request() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(ME, **bearer(token.raw)).status_code == 200
        return sum(q["sql"].startswith('UPDATE "accounts_token"') for q in queries)

    assert updates_of_a_request() == 1
    first = Token.objects.get(pk=token.pk).last_used_at
    assert first is not None
    assert updates_of_a_request() == 0  # within the minute: no write
    Token.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    assert updates_of_a_request() == 1
    assert Token.objects.get(pk=token.pk).last_used_at > first
