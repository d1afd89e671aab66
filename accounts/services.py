"""Writes to users, memberships and tokens. Each service is one transaction."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from accounts import signals
from accounts.models import Membership, Role, Token, TokenPurpose, User


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def membership_create(*, user: User, tenant, role: str = Role.MEMBER) -> Membership:
    """Give ``user`` a role in ``tenant``; an existing membership is re-activated (idempotent)."""
    membership, _ = Membership.objects.update_or_create(
        user=user, tenant=tenant, defaults={"role": role, "is_active": True}
    )
    return membership


def membership_create_owner(*, tenant_id) -> Membership:
    """Make the tenant's owner a member with the owner role. Idempotent."""
    from tenants.models import Tenant

    tenant = Tenant.objects.select_related("owner").get(pk=tenant_id)
    return membership_create(user=tenant.owner, tenant=tenant, role=Role.OWNER)


def membership_remove_owner(*, tenant_id) -> int:
    """Delete the owner's membership of the tenant, if any (undoes the one above)."""
    deleted, _ = Membership.objects.filter(
        tenant_id=tenant_id, user_id=Subquery(_owner_of(tenant_id))
    ).delete()
    return deleted


def _owner_of(tenant_id):
    from tenants.models import Tenant

    return Tenant.objects.filter(pk=tenant_id).values("owner_id")[:1]


def tenant_access_revoke(*, tenant_id) -> tuple[int, int]:
    """Deactivate every membership of the tenant and revoke its unused tokens.

    Returns (memberships deactivated, tokens revoked); a second run returns (0, 0).
    """
    with transaction.atomic():
        memberships = Membership.objects.filter(tenant_id=tenant_id, is_active=True).update(
            is_active=False
        )
        tokens = Token.objects.filter(tenant_id=tenant_id, revoked_at=None).update(
            revoked_at=timezone.now()
        )
    return memberships, tokens


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


def user_register(*, email: str, password: str) -> User:
    """Create a user (email not yet verified) and send ``user_registered``.

    Raises ``ValidationError`` with field errors for a malformed email, a password that
    Django's validators refuse, or an email already registered (in any letter case).
    """
    email = User.objects.normalize_email((email or "").strip()).lower()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError as exc:
        errors["email"] = exc.messages
    try:
        validate_password(password, User(email=email))
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError({"email": ["A user with this email already exists."]})
        user = User.objects.create_user(email, password)
        signals.user_registered.send(sender=User, user=user)
    return user


def user_verify_email(*, raw_token: str) -> User | None:
    """Use an email-verification token; mark the email verified and send
    ``email_verified``. None when the token is unknown, used or expired. Safe to retry:
    a second use of the same token is refused, never double-counted."""
    with transaction.atomic():
        token = token_consume(raw=raw_token, purpose=TokenPurpose.EMAIL_VERIFICATION)
        if token is None:
            return None
        user = token.user
        if user.email_verified_at is None:
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
        signals.email_verified.send(sender=User, user=user)
    return user
