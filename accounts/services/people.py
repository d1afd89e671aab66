"""Writes to users for the people of organisations: the account of someone who accepted an
invitation. Each service is one transaction."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User

ACCOUNT_EXISTS = "This address has an account: log in as it to accept."


def user_create_verified(*, email: str, password: str) -> User:
    """Create an active user whose email is verified already (they proved they read it: an
    emailed link brought them here). ``ValidationError`` on ``password`` when Django's
    validators refuse it, on ``email`` when the address has an account (in any letter
    case)."""
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_password(password, User(email=email))
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, email_verified_at=timezone.now())
    except IntegrityError:
        raise ValidationError({"email": [ACCOUNT_EXISTS]}) from None
