"""Writes to users, memberships and tokens. Each service is one transaction."""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Role, Token, TokenPurpose, User


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def membership_create(*, user: User, tenant, role: str = Role.MEMBER) -> Membership:
    """Give ``user`` a role in ``tenant``; an existing membership is re-activated (idempotent)."""
    membership, _ = Membership.objects.update_or_create(
        user=user, tenant=tenant, defaults={"role": role, "is_active": True}
    )
    return membership


def token_issue(*, user: User, purpose: str, ttl: timedelta, tenant=None) -> tuple[Token, str]:
    """Create a token and return it with its raw value, which is never stored or shown again."""
    if purpose not in TokenPurpose.values:
        raise ValueError(f"Unknown token purpose {purpose!r}.")
    raw = secrets.token_urlsafe(32)
    token = Token.objects.create(
        user=user,
        tenant=tenant,
        purpose=purpose,
        key_hash=hash_token(raw),
        prefix=raw[:8],
        expires_at=timezone.now() + ttl,
    )
    return token, raw


def token_consume(*, raw: str, purpose: str) -> Token | None:
    """Mark a one-time token used and return it; None when unknown, expired, used or revoked.

    The row is locked, so two concurrent uses of one token succeed at most once.
    """
    with transaction.atomic():
        token = (
            Token.objects.select_for_update()
            .select_related("user")
            .filter(key_hash=hash_token(raw), purpose=purpose)
            .first()
        )
        if token is None or not token.is_usable():
            return None
        token.used_at = timezone.now()
        token.save(update_fields=["used_at"])
    return token
