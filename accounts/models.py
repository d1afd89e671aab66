import hashlib
import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, email):
        # Log in with the address in any letter case (the unique index is on lower(email);
        # an address saved through a form may keep its capitals).
        return self.alias(email_ci=Lower("email")).get(email_ci=(email or "").strip().lower())

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person, identified by email. Lives in the public schema, shared by all tenants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


def hash_token(raw: str) -> str:
    """What a token's row stores of its raw value."""
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenPurpose(models.TextChoices):
    EMAIL_VERIFICATION = "email_verification", "Email verification"
    PASSWORD_RESET = "password_reset", "Password reset"
    EMAIL_CHANGE = "email_change", "Email change"
    API = "api", "API access"


class Token(models.Model):
    """A secret handed to a user once. Only its SHA-256 is stored; ``prefix`` helps support
    staff tell tokens apart without being able to use them."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    purpose = models.CharField(max_length=32, choices=TokenPurpose.choices)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False)
    # Set only for tokens a workflow must be able to email later (see token_issue_for_email):
    # the raw value is derived from it with SECRET_KEY, so it never sits in the outbox or in
    # a workflow history.
    nonce = models.CharField(max_length=32, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # API tokens: when the token last authenticated a request, to the minute (written at most
    # once a minute per token; see accounts.services.sessions.token_touch).
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "purpose"], name="token_user_purpose_idx")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} token {self.prefix}… for {self.user}"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.used_at is None and self.revoked_at is None and self.expires_at > now


class EmailKind(models.TextChoices):
    """The emails the per-recipient limits count, each kind on its own."""

    VERIFICATION = "verification", "Email verification"
    TENANT_DELETION = "tenant_deletion", "Organisation deletion scheduled"
    PASSWORD_RESET = "password_reset", "Password reset"
    EMAIL_CHANGE = "email_change", "Email change"
    INVITATION = "invitation", "Invitation to an organisation"


class EmailQuota(models.Model):
    """When emails of one kind went to one address in the last 24 hours, which
    ``email_quota_use`` reads and appends to under a row lock. Keyed by the address, not a
    user: deleting and re-creating an account does not reset it, and an email to someone
    without an account (an invitation) counts alike."""

    recipient = models.CharField(max_length=254)
    kind = models.CharField(max_length=32, choices=EmailKind.choices)
    # ISO 8601 times (UTC), oldest first; at most the daily limit of them.
    sent_at = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "kind"], name="email_quota_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} emails to {self.recipient}"


class EmailChange(models.Model):
    """A change of a user's email, waiting for the new address to be confirmed with its
    token. The user's ``email`` stays ``old_email`` until then; ``old_email`` is kept so
    that the notice to it goes to the address it was asked from, whenever it is sent."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_changes")
    token = models.OneToOneField(Token, on_delete=models.CASCADE, related_name="email_change")
    old_email = models.EmailField()
    new_email = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Email change for {self.user_id} (token {self.token_id})"
