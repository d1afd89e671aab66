"""Asking for the verification email again: the API (no account oracle, throttled), the
per-recipient limits whoever asks, the admin action, and the email itself through the
worker."""

import http.client
import json
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from accounts.api.views import RESEND_ANSWER
from accounts.models import EmailQuota, Token, TokenPurpose, User
from accounts.services import token_raw_value
from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import VerificationEmailWorkflow
from tests.api.conftest import signup
from tests.factories import UserFactory
from tests.kit import wait_until
from tests.workers import BackgroundWorker

RESEND = "/api/v1/auth/verify-email/resend/"
RESENDS = workflow_type(VerificationEmailWorkflow)


def resend_rows():
    return list(OutboxEntry.objects.filter(workflow_type=RESENDS))


def resend_from(api, address, email="ada@example.com"):
    return api.post(RESEND, {"email": email}, format="json", REMOTE_ADDR=address)


def age_the_sends(by: timedelta) -> None:
    """Move the recorded sends into the past, as if ``by`` had gone by."""
    for quota in EmailQuota.objects.all():
        quota.sent_at = [(datetime.fromisoformat(t) - by).isoformat() for t in quota.sent_at]
        quota.save()


@pytest.mark.django_db
def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(api):
    assert signup(api).status_code == 202
    known = api.post(RESEND, {"email": "ADA@example.com"}, format="json")
    unknown = api.post(RESEND, {"email": "nobody@example.com"}, format="json")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    (row,) = resend_rows()  # only the real account gets an email
    token = Token.objects.get(purpose=TokenPurpose.EMAIL_VERIFICATION)
    assert row.arguments["verification_token_id"] == token.pk  # the token it already had
    assert "ada" not in row.workflow_id  # no personal data in workflow ids


@pytest.mark.django_db
def test_nothing_is_sent_to_a_verified_address_and_bad_input_is_400(api):
    assert signup(api).status_code == 202
    User.objects.update(email_verified_at=timezone.now())
    assert api.post(RESEND, {"email": "ada@example.com"}, format="json").status_code == 202
    assert resend_rows() == []
    bad = api.post(RESEND, {"email": "not an email"}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"email"}


@pytest.mark.django_db
def test_an_expired_token_is_replaced(api):
    assert signup(api).status_code == 202
    Token.objects.filter(purpose=TokenPurpose.EMAIL_VERIFICATION).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api.post(RESEND, {"email": "ada@example.com"}, format="json").status_code == 202
    fresh = Token.objects.filter(purpose=TokenPurpose.EMAIL_VERIFICATION).latest("created_at")
    assert fresh.is_usable()
    assert resend_rows()[0].arguments["verification_token_id"] == fresh.pk


@pytest.mark.django_db
def test_resend_is_rate_limited(api):
    answers = [
        api.post(RESEND, {"email": "nobody@example.com"}, format="json").status_code
        for _ in range(4)
    ]
    assert answers == [202, 202, 202, 429]  # test settings: 3/minute
    assert "detail" in api.post(RESEND, {"email": "x@example.com"}, format="json").json()


def test_thirty_client_addresses_cannot_flood_one_inbox(live_server):
    """Real requests over TCP from 30 loopback addresses, each under the per-address
    throttle: one email goes out, and every answer is the same."""
    UserFactory(email="ada@example.com")  # signed up, email not verified
    port = urlsplit(live_server.url).port
    answers = set()
    for n in range(30):
        connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=30, source_address=(f"127.0.{n // 200}.{n % 200 + 2}", 0)
        )
        body = json.dumps({"email": "ada@example.com"})
        headers = {"Host": "localhost", "Content-Type": "application/json"}
        connection.request("POST", RESEND, body=body, headers=headers)
        response = connection.getresponse()
        answers.add((response.status, response.read()))
        connection.close()
    ((status, body),) = answers  # thirty times the same
    assert (status, json.loads(body)) == (202, {"detail": RESEND_ANSWER})
    assert len(resend_rows()) == 1


@pytest.mark.django_db
def test_a_held_back_email_answers_exactly_as_a_sent_one(api):
    UserFactory(email="ada@example.com")
    sent = resend_from(api, "10.0.0.1")
    held_back = resend_from(api, "10.0.0.2")
    assert len(resend_rows()) == 1
    assert held_back.status_code == sent.status_code == 202
    assert held_back.content == sent.content

    def headers(response):
        return {k: v for k, v in response.items() if k.lower() != "x-request-id"}

    assert headers(held_back) == headers(sent)


@pytest.mark.django_db
def test_one_email_a_minute_and_five_a_day_to_one_address(api):
    UserFactory(email="ada@example.com")
    for n in range(5):
        assert resend_from(api, f"10.0.1.{n}").status_code == 202
        assert resend_from(api, f"10.0.2.{n}").status_code == 202  # within the minute
        assert len(resend_rows()) == n + 1
        age_the_sends(timedelta(seconds=61))
    resend_from(api, "10.0.3.1")
    assert len(resend_rows()) == 5  # the day's five are spent
    # The first of the five (305 s old) passes 24 h, the second (244 s old) does not.
    age_the_sends(timedelta(days=1) - timedelta(seconds=4 * 61 + 30))
    resend_from(api, "10.0.3.2")
    assert len(resend_rows()) == 6
    assert len(EmailQuota.objects.get(recipient="ada@example.com").sent_at) == 5


@pytest.mark.django_db
def test_the_admin_shares_the_limits_and_says_why_it_skipped(api, admin_client):
    UserFactory(email="ada@example.com")
    assert resend_from(api, "10.0.0.1").status_code == 202
    ada = User.objects.get(email="ada@example.com")
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "resend_verification", "_selected_action": [str(ada.pk)]},
        HTTP_HOST="localhost",
        follow=True,
    )
    (text,) = [str(m) for m in response.context["messages"]]
    assert text.startswith(
        "Skipped ada@example.com: one such email went to this address less than 60 s ago; "
        "the next can go in "
    )
    assert len(resend_rows()) == 1


@pytest.mark.django_db
def test_staff_can_resend_from_the_admin(api, admin_client):
    assert signup(api).status_code == 202
    assert signup(api, email="bo@example.com", subdomain="bravo").status_code == 202
    User.objects.filter(email="bo@example.com").update(email_verified_at=timezone.now())
    users = User.objects.filter(email__in=["ada@example.com", "bo@example.com"])
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "resend_verification", "_selected_action": [str(u.pk) for u in users]},
        HTTP_HOST="localhost",
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert "Skipped bo@example.com: already verified." in texts
    assert "Verification email queued for 1: ada@example.com." in texts
    assert len(resend_rows()) == 1


@pytest.mark.usefixtures("queue_prefix")
def test_the_email_goes_out_through_the_worker(api, temporal, transactional_db):
    assert signup(api).status_code == 202
    with BackgroundWorker(temporal, kinds=("tenant", "jobs")):
        wait_until(
            lambda: len(mail.outbox) == 1, timeout=60, what="the signup's verification email"
        )
        assert api.post(RESEND, {"email": "ada@example.com"}, format="json").status_code == 202
        wait_until(lambda: len(mail.outbox) == 2, timeout=60, what="the resent verification email")
    token = Token.objects.get(purpose=TokenPurpose.EMAIL_VERIFICATION)
    assert token_raw_value(token) in mail.outbox[1].body
    assert mail.outbox[1].to == ["ada@example.com"]
