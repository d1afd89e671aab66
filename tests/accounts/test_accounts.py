import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from accounts.models import EmailKind, EmailQuota, Token, TokenPurpose, User, hash_token
from accounts.selectors import token_find_usable
from accounts.services import EmailQuotaExceeded, email_quota_use, token_consume, token_issue
from tenants.models import Membership, Role
from tenants.services.people import membership_create
from tests.factories import PASSWORD, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(email="Person@Example.COM")  # through the manager's create_user


def test_email_is_the_login_and_stored_lower_case(user):
    assert user.email == "person@example.com"
    assert User.USERNAME_FIELD == "email"
    assert user.check_password(PASSWORD)


def test_email_unique_case_insensitively(user):
    with pytest.raises(IntegrityError, match="user_email_ci_unique"):
        User.objects.create(email="PERSON@example.com")


def test_only_the_token_hash_is_stored(user):
    token, raw = token_issue(
        user=user, purpose=TokenPurpose.EMAIL_VERIFICATION, ttl=timedelta(hours=1)
    )
    stored = Token.objects.get(pk=token.pk)
    assert stored.key_hash == hash_token(raw)
    assert raw not in {stored.key_hash, stored.prefix}
    assert len(raw) >= 40


def test_token_is_consumed_once(user):
    _, raw = token_issue(user=user, purpose=TokenPurpose.EMAIL_VERIFICATION, ttl=timedelta(hours=1))
    assert token_consume(raw=raw, purpose=TokenPurpose.PASSWORD_RESET) is None  # wrong purpose
    used = token_consume(raw=raw, purpose=TokenPurpose.EMAIL_VERIFICATION)
    assert used is not None
    assert used.used_at is not None
    assert token_consume(raw=raw, purpose=TokenPurpose.EMAIL_VERIFICATION) is None


def test_expired_token_is_refused(user):
    _, raw = token_issue(user=user, purpose=TokenPurpose.API, ttl=timedelta(seconds=-1))
    assert token_find_usable(raw=raw, purpose=TokenPurpose.API) is None
    assert token_consume(raw=raw, purpose=TokenPurpose.API) is None
    _, fresh = token_issue(user=user, purpose=TokenPurpose.API, ttl=timedelta(days=30))
    assert token_find_usable(raw=fresh, purpose=TokenPurpose.API).user == user


def test_unknown_purpose_is_refused(user):
    with pytest.raises(ValueError, match="Unknown token purpose"):
        token_issue(user=user, purpose="root", ttl=timedelta(hours=1))


def test_membership_create_is_idempotent(user):
    tenant = TenantFactory(owner=user)
    first = membership_create(user=user, tenant=tenant, role=Role.OWNER)
    Membership.objects.filter(pk=first.pk).update(is_active=False)
    again = membership_create(user=user, tenant=tenant, role=Role.OWNER)
    assert again.pk == first.pk
    assert again.is_active
    assert Membership.objects.count() == 1


def _use_quota_at_once(count: int) -> list[str]:
    """``email_quota_use`` for one address from ``count`` threads at once, each on its own
    database connection (as separate web processes would be); what each one got."""
    barrier = threading.Barrier(count)

    def use() -> str:
        barrier.wait()
        try:
            email_quota_use(recipient="Ada@Example.com", kind=EmailKind.VERIFICATION)
            return "sent"
        except EmailQuotaExceeded:
            return "held back"
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return sorted(pool.map(lambda _: use(), range(count)))


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_address_send_one_email():
    assert _use_quota_at_once(8) == ["held back"] * 7 + ["sent"]  # the first for the address
    (quota,) = EmailQuota.objects.all()
    assert quota.recipient == "ada@example.com"
    before = timezone.now() - timedelta(minutes=2)
    quota.sent_at = [before.isoformat()]
    quota.save()
    assert _use_quota_at_once(8) == ["held back"] * 7 + ["sent"]  # and once it has a row
    assert len(EmailQuota.objects.get().sent_at) == 2


def test_the_quota_says_which_limit_held_an_email_back(settings):
    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    settings.EMAIL_RECIPIENT_DAILY_LIMIT = 2
    for _ in range(2):
        email_quota_use(recipient="ada@example.com", kind=EmailKind.VERIFICATION)
    with pytest.raises(EmailQuotaExceeded, match="2 such emails went to this address") as held:
        email_quota_use(recipient="ada@example.com", kind=EmailKind.VERIFICATION)
    assert held.value.daily
    assert 24 * 3600 - 60 < held.value.retry_after <= 24 * 3600
    with pytest.raises(ValueError, match="Unknown email kind"):
        email_quota_use(recipient="ada@example.com", kind="newsletter")
