"""API tokens as sessions: when each was last used, logging out (one token or all of a
user's). Each service is one transaction."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Token, TokenPurpose, User

# ``last_used_at`` is written at most this often per token: a request finds the token it
# authenticates with in memory, and writes only when the recorded use is older.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_touch(*, token: Token) -> bool:
    """Record that ``token`` authenticated a request now, unless a use within the last
    minute is recorded already (then nothing is written). One conditional ``UPDATE`` when it
    writes, so concurrent requests with one token write it once. Returns whether it wrote."""
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at > stale:
        return False
    written = (
        Token.objects.filter(pk=token.pk)
        .filter(Q(last_used_at=None) | Q(last_used_at__lte=stale))
        .update(last_used_at=now)
    )
    token.last_used_at = now
    return bool(written)


def token_revoke(*, token: Token) -> bool:
    """Revoke one API token (logout): it authenticates nothing from now on. Returns whether
    it was still open; revoking it again changes nothing."""
    revoked = Token.objects.filter(pk=token.pk, purpose=TokenPurpose.API, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    return bool(revoked)


def tokens_revoke_all(*, user: User, purposes: tuple[str, ...] = (TokenPurpose.API,)) -> int:
    """Revoke every open token of ``user`` with one of ``purposes`` (logout everywhere, a
    password reset, closing the account). Returns how many."""
    with transaction.atomic():
        return Token.objects.filter(
            user=user, purpose__in=purposes, revoked_at=None, used_at=None
        ).update(revoked_at=timezone.now())
