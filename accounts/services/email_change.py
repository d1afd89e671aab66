"""Changing a user's email: asked for by the user (with their password, checked by the
caller), confirmed by a token emailed to the new address; the old address is told, and
stays the user's until the confirmation. Each service is one transaction."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import signals
from accounts.models import EmailChange, EmailKind, TokenPurpose, User
from accounts.services import email_quota_use, token_consume, token_issue_for_email, token_raw_value
from accounts.services.sessions import tokens_revoke_all

# Deliberately the words signup uses for a taken address, and no more: see docs/api.md
# ("Changing the email").
EMAIL_UNAVAILABLE = "This email cannot be used."
SAME_EMAIL = "This is already the account's email."
INVALID_CHANGE_TOKEN = "Invalid, used or expired token."  # noqa: S105 - a message


def _normalized(email: str) -> str:
    return User.objects.normalize_email((email or "").strip()).lower()


def _taken(email: str, *, by_other_than: User) -> bool:
    return User.objects.filter(email=email).exclude(pk=by_other_than.pk).exists()


def email_change_request(*, user: User, new_email: str) -> EmailChange:
    """Ask to change ``user``'s email to ``new_email``: a confirmation token (valid
    ``EMAIL_CHANGE_TTL`` seconds, single use) for the new address, the user's earlier
    pending changes revoked, and ``email_change_requested`` sent (its receiver queues the
    confirmation to the new address and the notice to the old one). The user's email does
    not change here. The caller has checked the user's password.

    Raises ``ValidationError`` (``email``) for a malformed address, the user's own, or one
    another account has; ``EmailQuotaExceeded`` when the new address had its share of such
    emails (``email_quota_use``). Nothing changes then."""
    new_email = _normalized(new_email)
    try:
        validate_email(new_email)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}) from None
    if new_email == user.email.lower():
        raise ValidationError({"email": [SAME_EMAIL]})
    with transaction.atomic():
        # Two requests of one user take turns: the later one revokes the earlier's token.
        user = User.objects.select_for_update().get(pk=user.pk)
        if _taken(new_email, by_other_than=user):
            raise ValidationError({"email": [EMAIL_UNAVAILABLE]})
        email_quota_use(recipient=new_email, kind=EmailKind.EMAIL_CHANGE)
        tokens_revoke_all(user=user, purposes=(TokenPurpose.EMAIL_CHANGE,))
        token = token_issue_for_email(
            user=user,
            purpose=TokenPurpose.EMAIL_CHANGE,
            ttl=timedelta(seconds=settings.EMAIL_CHANGE_TTL),
        )
        change = EmailChange.objects.create(
            user=user, token=token, old_email=user.email, new_email=new_email
        )
        signals.email_change_requested.send(sender=User, user=user, email_change=change)
    return change


def email_change_confirm(*, raw_token: str) -> User:
    """Use an email change's token: the user's email becomes the new address, verified (the
    token came to it), and their other pending changes are revoked. Raises
    ``ValidationError`` — ``token`` for a token unknown, used, revoked, expired or of an
    inactive user; ``email`` when another account took the address meanwhile (the token
    stays unused) — and nothing changes then. Concurrent uses succeed at most once."""
    with transaction.atomic():
        token = token_consume(raw=raw_token, purpose=TokenPurpose.EMAIL_CHANGE)
        if token is None or not token.user.is_active:
            raise ValidationError({"token": [INVALID_CHANGE_TOKEN]})
        change = EmailChange.objects.select_related("user").get(token=token)
        user = change.user
        if _taken(change.new_email, by_other_than=user):
            raise ValidationError({"email": [EMAIL_UNAVAILABLE]})
        now = timezone.now()
        user.email, user.email_verified_at = change.new_email, now
        try:
            with transaction.atomic():
                user.save(update_fields=["email", "email_verified_at"])
        except IntegrityError:  # a concurrent signup or change took it first
            raise ValidationError({"email": [EMAIL_UNAVAILABLE]}) from None
        change.confirmed_at = now
        change.save(update_fields=["confirmed_at"])
        tokens_revoke_all(user=user, purposes=(TokenPurpose.EMAIL_CHANGE,))
    return user


def _change_of(token_id: int) -> EmailChange | None:
    return EmailChange.objects.select_related("token", "user").filter(token_id=token_id).first()


def email_change_confirm_send(*, token_id: int) -> bool:
    """Email the confirmation token to the new address. False (nothing sent) when the change
    is gone or its token no longer usable. At-least-once: a retry may send it twice."""
    change = _change_of(token_id)
    if change is None or not change.token.is_usable() or not change.user.is_active:
        return False
    body = (
        f"To make {change.new_email} the email of your account, send this token to "
        f"{settings.PUBLIC_BASE_URL}/api/v1/auth/email-change/confirm/ :\n\n"
        f"{token_raw_value(change.token)}\n\n"
        f"It can be used once, until {change.token.expires_at:%Y-%m-%d %H:%M} UTC. Until "
        f"then the account keeps its current email. If you did not ask, ignore this email."
    )
    send_mail("Confirm your new email", body, None, [change.new_email])
    return True


def email_change_notice_send(*, token_id: int) -> bool:
    """Tell the address the change was asked from. Sent whether or not the change was
    confirmed meanwhile; False (nothing sent) when the change is gone (its user deleted, or
    its token cleaned up). At-least-once."""
    change = _change_of(token_id)
    if change is None or not change.user.is_active:
        return False
    body = (
        f"Someone signed in to the account of {change.old_email} asked to change its email "
        f"to {change.new_email}. It changes only if the new address confirms it, by "
        f"{change.token.expires_at:%Y-%m-%d %H:%M} UTC.\n\n"
        f"If it was not you, reset your password at "
        f"{settings.PUBLIC_BASE_URL}/api/v1/auth/password-reset/ now: that also cancels the "
        f"change and signs out every session."
    )
    send_mail("Your account's email is being changed", body, None, [change.old_email])
    return True
