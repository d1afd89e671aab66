"""Password reset: asked for by address, emailed as a single-use token, used once to set a
new password, which revokes every API token of the user. Each service is one transaction.

No oracle: asking for an address without an account answers the same, and does the same
work in the request, as asking for one with an account (see ``password_reset_request``)."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts import signals
from accounts.models import EmailKind, Token, TokenPurpose, User, hash_token
from accounts.services import email_quota_use, token_issue_for_email, token_raw_value
from accounts.services.sessions import tokens_revoke_all

INVALID_RESET_TOKEN = "Invalid, used or expired token."  # noqa: S105 - a message


def password_reset_request(*, email: str) -> Token | None:
    """Ask for a password reset email: for an active user with this address (any letter
    case), revoke their earlier reset tokens, issue a new one (``PASSWORD_RESET_TTL``
    seconds, single use) and send ``password_reset_requested``; returns the token.

    None for an address without an active account, after the very same work: the token is
    issued (to an id that is no user's) and the signal sent, inside a savepoint that is then
    rolled back, so that nothing of it remains and no email is queued. The same statements,
    hashing and receivers run either way: neither the answer nor its timing tells whether
    the address has an account (tests/api/test_password_reset.py compares the statements,
    bench/password_reset_oracle.py the times).

    Raises ``EmailQuotaExceeded`` (and changes nothing) once the address had its share of
    reset emails (``email_quota_use``), whether or not it has an account."""
    email = User.objects.normalize_email((email or "").strip()).lower()
    with transaction.atomic():
        user = User.objects.filter(email=email, is_active=True).first()
        email_quota_use(recipient=email, kind=EmailKind.PASSWORD_RESET)
        # Earlier reset links stop working: only the newest can be used.
        Token.objects.filter(
            user=user, purpose=TokenPurpose.PASSWORD_RESET, used_at=None, revoked_at=None
        ).update(revoked_at=timezone.now())
        # Released for an account, rolled back for a decoy: one statement either way (the
        # token's foreign key is checked at commit, which a decoy never reaches).
        savepoint = transaction.savepoint_create()
        owner = user or User(pk=uuid.uuid4(), email=email)
        token = token_issue_for_email(
            user=owner,
            purpose=TokenPurpose.PASSWORD_RESET,
            ttl=timedelta(seconds=settings.PASSWORD_RESET_TTL),
        )
        signals.password_reset_requested.send(sender=User, user=owner, token=token)
        if user is None:
            transaction.savepoint_rollback(savepoint)
            return None
        transaction.savepoint_commit(savepoint)
    return token


def password_reset_confirm(*, raw_token: str, password: str) -> User:
    """Use a password reset token to set ``password`` (Django's validators decide): the
    token is used up; every API token, every other reset token and every pending email
    change of the user is revoked (a change asked for by whoever held the account before).
    Raises ``ValidationError`` with a ``token`` error for a token that is unknown, used,
    revoked, expired or of an inactive user, or ``password`` errors (the token then stays
    usable); nothing changes then. Concurrent uses of one token succeed at most once (its
    row is locked)."""
    with transaction.atomic():
        token = (
            Token.objects.select_for_update()
            .select_related("user")
            .filter(key_hash=hash_token(raw_token), purpose=TokenPurpose.PASSWORD_RESET)
            .first()
        )
        if token is None or not token.is_usable() or not token.user.is_active:
            raise ValidationError({"token": [INVALID_RESET_TOKEN]})
        user = token.user
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        token.used_at = timezone.now()
        token.save(update_fields=["used_at"])
        user.set_password(password)
        user.save(update_fields=["password"])
        tokens_revoke_all(
            user=user,
            purposes=(TokenPurpose.API, TokenPurpose.PASSWORD_RESET, TokenPurpose.EMAIL_CHANGE),
        )
    return user


def password_reset_email_send(*, token_id: int) -> bool:
    """Email the user their password reset token. False (and nothing sent) when the token is
    gone or no longer usable (used, revoked by a newer request, expired). At-least-once: a
    retried activity may send the same email twice."""
    token = (
        Token.objects.select_related("user")
        .filter(pk=token_id, purpose=TokenPurpose.PASSWORD_RESET)
        .first()
    )
    if token is None or not token.is_usable() or not token.user.is_active:
        return False
    body = (
        f"Someone asked to reset the password of {token.user.email}. To choose a new one, "
        f"send this token with it to "
        f"{settings.PUBLIC_BASE_URL}/api/v1/auth/password-reset/confirm/ :\n\n"
        f"{token_raw_value(token)}\n\n"
        f"It can be used once, until {token.expires_at:%Y-%m-%d %H:%M} UTC. Every API token "
        f"of the account stops working when it is used. If you did not ask, ignore this email."
    )
    send_mail("Reset your password", body, None, [token.user.email])
    return True
