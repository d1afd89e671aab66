"""Reads of users, memberships and tokens."""

from django.utils import timezone

from accounts.models import Membership, Token
from accounts.services import hash_token


def token_find_usable(*, raw: str, purpose: str) -> Token | None:
    """The token with this raw value and purpose, if it can still be used."""
    token = (
        Token.objects.select_related("user")
        .filter(key_hash=hash_token(raw), purpose=purpose, used_at=None, revoked_at=None)
        .filter(expires_at__gt=timezone.now())
        .first()
    )
    return token


def memberships_for_user(*, user):
    return Membership.objects.filter(user=user, is_active=True).select_related("tenant")
