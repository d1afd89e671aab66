"""Writes to users and tokens. Each service is one transaction.

This app knows nothing of tenants: ``tenants`` builds on it (see docs/architecture.md)."""

import base64
import hmac
import math
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import signals
from accounts.models import EmailKind, EmailQuota, Token, TokenPurpose, User, hash_token


def token_issue(*, user: User, purpose: str, ttl: timedelta) -> tuple[Token, str]:
    """Create a token and return it with its raw value, which is never stored or shown again."""
    if purpose not in TokenPurpose.values:
        raise ValueError(f"Unknown token purpose {purpose!r}.")
    raw = secrets.token_urlsafe(32)
    token = Token.objects.create(
        user=user,
        purpose=purpose,
        key_hash=hash_token(raw),
        prefix=raw[:8],
        expires_at=timezone.now() + ttl,
    )
    return token, raw


def token_issue_for_email(*, user: User, purpose: str, ttl: timedelta) -> Token:
    """A token whose raw value ``token_raw_value`` can recompute (from SECRET_KEY and a
    stored nonce), for a workflow that emails it later without the secret ever being
    written to the outbox or to Temporal."""
    nonce = secrets.token_hex(16)
    raw = secret_derive(purpose, nonce)
    return Token.objects.create(
        user=user,
        purpose=purpose,
        key_hash=hash_token(raw),
        prefix=raw[:8],
        nonce=nonce,
        expires_at=timezone.now() + ttl,
    )


def token_raw_value(token: Token) -> str:
    if not token.nonce:
        raise ValueError(f"Token {token.pk} is not recoverable; its value was shown once.")
    return secret_derive(token.purpose, token.nonce)


def secret_derive(purpose: str, nonce: str) -> str:
    """The secret of ``purpose`` for a stored ``nonce``: recomputable with SECRET_KEY, so a
    workflow can email it later while only its nonce (and its hash) is stored."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{purpose}:{nonce}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


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


EMAIL_UNAVAILABLE = (
    "This email cannot be used to sign up. If it is yours, get a token from "
    "/api/v1/auth/token/ instead."
)


def user_register(*, email: str, password: str) -> tuple[User, Token]:
    """Create a user (email not yet verified) with an email-verification token; returns
    both. The caller sends the token: signup does, through ``tenants.signals.signed_up``,
    which starts onboarding (the verification email, a reminder…) on the new tenant's route.

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
        # Emails are stored lower-cased (and unique on lower(email)): an indexed lookup.
        if User.objects.filter(email=email).exists():
            # The password is hashed all the same: a taken email must cost what a new
            # account costs, or the answer's timing would tell that the email has one.
            make_password(password)
            # Deliberately the same words whatever the reason; see docs/api.md (taken emails).
            raise ValidationError({"email": [EMAIL_UNAVAILABLE]})
        try:
            with transaction.atomic():
                user = User.objects.create_user(email, password)
        except IntegrityError:
            # A concurrent signup with the same email committed first.
            if User.objects.filter(email=email).exists():
                raise ValidationError({"email": [EMAIL_UNAVAILABLE]}) from None
            raise
        token = token_issue_for_email(
            user=user,
            purpose=TokenPurpose.EMAIL_VERIFICATION,
            ttl=timedelta(seconds=settings.ONBOARDING_EXPIRE_AFTER),
        )
    return user, token


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


class EmailQuotaExceeded(Exception):
    """An email was refused by the per-recipient limits (see ``email_quota_use``);
    ``retry_after``: seconds until one would be accepted."""

    def __init__(self, *, retry_after: int, daily: bool):
        self.retry_after, self.daily = retry_after, daily
        if daily:
            limit = settings.EMAIL_RECIPIENT_DAILY_LIMIT
            why = f"{limit} such email{'s' if limit != 1 else ''} went to this address in 24 hours"
        else:
            cooldown = settings.EMAIL_RECIPIENT_COOLDOWN
            why = f"one such email went to this address less than {cooldown} s ago"
        wait = f"{retry_after} s" if retry_after < 120 else f"{math.ceil(retry_after / 60)} min"
        super().__init__(f"{why}; the next can go in {wait}")


def email_quota_use(*, recipient: str, kind: str) -> None:
    """Count one email of ``kind`` to ``recipient`` against the per-recipient limits, or
    raise ``EmailQuotaExceeded`` and count nothing: one every ``EMAIL_RECIPIENT_COOLDOWN``
    seconds and ``EMAIL_RECIPIENT_DAILY_LIMIT`` in any 24 hours, whoever asks. Call it for
    every email sent on request (a new kind is one ``EmailKind`` entry), inside the
    transaction that queues the email, so the count commits or rolls back with it.
    Concurrent calls for one address, from any process, wait for each other on its row."""
    if kind not in EmailKind.values:
        raise ValueError(f"Unknown email kind {kind!r}.")
    recipient = recipient.strip().lower()
    now = timezone.now()
    with transaction.atomic():
        EmailQuota.objects.bulk_create(
            [EmailQuota(recipient=recipient, kind=kind)], ignore_conflicts=True
        )
        quota = EmailQuota.objects.select_for_update().get(recipient=recipient, kind=kind)
        day = timedelta(days=1)
        recent = [t for t in map(datetime.fromisoformat, quota.sent_at) if t > now - day]
        cooldown = timedelta(seconds=settings.EMAIL_RECIPIENT_COOLDOWN)
        if recent and recent[-1] + cooldown > now:
            wait, daily = recent[-1] + cooldown - now, False
        elif len(recent) >= settings.EMAIL_RECIPIENT_DAILY_LIMIT:
            wait, daily = recent[-settings.EMAIL_RECIPIENT_DAILY_LIMIT] + day - now, True
        else:
            quota.sent_at = [t.isoformat() for t in (*recent, now)]
            quota.save(update_fields=["sent_at"])
            return
    raise EmailQuotaExceeded(retry_after=math.ceil(wait.total_seconds()), daily=daily)


def verification_email_resend(*, email: str) -> Token | None:
    """Ask for the verification email to be sent again: to an active user whose email is
    not verified yet, with their usable verification token (a new one when none is left).
    Sends ``verification_email_requested`` and returns the token; None (and sends nothing)
    for an unknown, inactive or already verified address. Raises ``EmailQuotaExceeded``
    (and sends nothing) when the address had its share of verification emails
    (``email_quota_use``). Callers that answer the public answer the same in every case,
    so that the answer does not tell whether an address has an account, or was limited."""
    email = User.objects.normalize_email((email or "").strip()).lower()
    with transaction.atomic():
        user = User.objects.filter(email=email, is_active=True).select_for_update().first()
        if user is None or user.email_verified_at is not None:
            return None
        email_quota_use(recipient=user.email, kind=EmailKind.VERIFICATION)
        token = (
            Token.objects.filter(
                user=user,
                purpose=TokenPurpose.EMAIL_VERIFICATION,
                used_at=None,
                revoked_at=None,
                expires_at__gt=timezone.now(),
            )
            .exclude(nonce="")
            .order_by("-expires_at")
            .first()
        ) or token_issue_for_email(
            user=user,
            purpose=TokenPurpose.EMAIL_VERIFICATION,
            ttl=timedelta(seconds=settings.ONBOARDING_EXPIRE_AFTER),
        )
        signals.verification_email_requested.send(sender=User, user=user, verification_token=token)
    return token


def email_send_verification(*, token_id: int, reminder: bool = False) -> bool:
    """Email the user their verification token. Returns False (and sends nothing) when the
    token is gone (its account closed) or no longer usable, or the email is already
    verified. At-least-once: a retried activity may send the same email twice."""

    token = Token.objects.select_related("user").filter(pk=token_id).first()
    if token is None or token.user.email_verified_at is not None or not token.is_usable():
        return False
    raw = token_raw_value(token)
    subject = "Reminder: verify your email" if reminder else "Welcome! Verify your email"
    body = (
        f"{'This is a reminder. ' if reminder else 'Welcome! '}"
        f"To verify {token.user.email}, send this token to "
        f"{settings.PUBLIC_BASE_URL}/api/v1/auth/verify-email/ :\n\n{raw}\n\n"
        f"It expires at {token.expires_at:%Y-%m-%d %H:%M} UTC."
    )
    send_mail(subject, body, None, [token.user.email])
    return True


def email_verification_expire(*, token_id: int) -> bool:
    """Revoke an unused verification token (onboarding gave up). Returns whether it was
    still open."""
    revoked = Token.objects.filter(pk=token_id, used_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    return bool(revoked)


def tokens_delete_stale(*, retention: timedelta, batch_size: int) -> int:
    """Delete up to ``batch_size`` tokens that stopped being usable (used, revoked or
    expired) more than ``retention`` ago. Returns how many; call again until 0."""
    cutoff = timezone.now() - retention
    stale = Q(used_at__lt=cutoff) | Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff)
    with transaction.atomic():
        ids = list(
            Token.objects.filter(stale).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        deleted, _ = Token.objects.filter(pk__in=ids).delete()
    return deleted
