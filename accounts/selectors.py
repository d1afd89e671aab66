"""Reads of users and tokens."""

from django.utils import timezone

from accounts.models import Token, hash_token


def token_find_usable(*, raw: str, purpose: str) -> Token | None:
    """The token with this raw value and purpose, if it can still be used."""
    token = (
        Token.objects.select_related("user")
        .filter(key_hash=hash_token(raw), purpose=purpose, used_at=None, revoked_at=None)
        .filter(expires_at__gt=timezone.now())
        .first()
    )
    return token
