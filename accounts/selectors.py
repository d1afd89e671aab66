"""Reads of users and tokens."""

from django.utils import timezone

from accounts.models import Token, TokenPurpose, hash_token


def token_find_usable(*, raw: str, purpose: str) -> Token | None:
    """The token with this raw value and purpose, if it can still be used."""
    token = (
        Token.objects.select_related("user")
        .filter(key_hash=hash_token(raw), purpose=purpose, used_at=None, revoked_at=None)
        .filter(expires_at__gt=timezone.now())
        .first()
    )
    return token


def api_tokens_open(*, user) -> list[Token]:
    """The user's API tokens that still authenticate, newest first."""
    return list(
        Token.objects.filter(user=user, purpose=TokenPurpose.API, used_at=None, revoked_at=None)
        .filter(expires_at__gt=timezone.now())
        .order_by("-created_at")
    )
