"""Asking for the verification email again: the API (no account oracle, throttled), the
admin action, and the email itself through the worker."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Token, TokenPurpose, User
from accounts.services import token_raw_value
from orchestration.models import OutboxEntry
from orchestration.outbox import workflow_type
from orchestration.workflows import VerificationEmailWorkflow
from tests.api.conftest import signup
from tests.kit import wait_until
from tests.workers import BackgroundWorker

RESEND = "/api/v1/auth/verify-email/resend/"
RESENDS = workflow_type(VerificationEmailWorkflow)


def resend_rows():
    return list(OutboxEntry.objects.filter(workflow_type=RESENDS))


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
