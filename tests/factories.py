"""Factories for the project's models: the one place tests make users, tenants, memberships
and tokens. Each builds a valid row with no workflow behind it; tests that exercise a
service (``tenant_create``, ``token_issue``…) call the service instead."""

import secrets
from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Token, TokenPurpose, User, hash_token
from orchestration.models import OutboxEntry
from tenants.models import Membership, Role, SuspensionReason, Tenant, TenantStatus

PASSWORD = "a long passphrase 123"  # every factory-made user logs in with it


class UserFactory(DjangoModelFactory):
    """A user made by the manager's ``create_user`` (email lower-cased, password hashed):
    ``UserFactory(email=...)``; ``superuser=True`` for an admin."""

    class Meta:
        model = User

    class Params:
        superuser = factory.Trait(is_staff=True, is_superuser=True)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, **kwargs)


class TenantFactory(DjangoModelFactory):
    """A tenant row (``schema_name`` comes from its id, in ``Tenant.save``; no schema is
    made). Pass ``status=`` for one further along its lifecycle; the name is the subdomain,
    title-cased."""

    class Meta:
        model = Tenant

    subdomain = factory.Sequence(lambda n: f"tenant{n}")
    name = factory.LazyAttribute(lambda tenant: tenant.subdomain.title())
    owner = factory.SubFactory(UserFactory)
    # A suspended tenant says why (a check constraint): billing, unless given.
    suspension_reason = factory.LazyAttribute(
        lambda tenant: (
            SuspensionReason.BILLING
            if getattr(tenant, "status", "") == TenantStatus.SUSPENDED
            else ""
        )
    )
    # A tenant scheduled for deletion says when it is purged (a check constraint): in the
    # default grace period's time, its first scheduling, unless given.
    purge_at = factory.LazyAttribute(
        lambda tenant: (
            timezone.now() + timedelta(days=30)
            if getattr(tenant, "status", "") == TenantStatus.DELETION_SCHEDULED
            else None
        )
    )
    deletion_scheduling = factory.LazyAttribute(
        lambda tenant: int(getattr(tenant, "status", "") == TenantStatus.DELETION_SCHEDULED)
    )


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.MEMBER


class TokenFactory(DjangoModelFactory):
    """A token stored as ``token_issue`` stores it (only the hash); the raw value a client
    would hold is on the returned object as ``token.raw``. ``ttl`` sets its expiry."""

    class Meta:
        model = Token

    class Params:
        ttl = timedelta(hours=1)

    user = factory.SubFactory(UserFactory)
    purpose = TokenPurpose.API
    raw = factory.LazyFunction(lambda: secrets.token_urlsafe(32))
    key_hash = factory.LazyAttribute(lambda token: hash_token(token.raw))
    prefix = factory.LazyAttribute(lambda token: token.raw[:8])
    expires_at = factory.LazyAttribute(lambda token: timezone.now() + token.ttl)

    @classmethod
    def _create(cls, model_class, *args, raw, **kwargs):
        token = super()._create(model_class, *args, **kwargs)
        token.raw = raw
        return token


class OutboxEntryFactory(DjangoModelFactory):
    """An outbox row as a receiver writes it (pending, due now), with no workflow behind it:
    for tests of what reads the outbox. Tests of the relay enqueue through the receivers."""

    class Meta:
        model = OutboxEntry

    workflow_type = "TenantProvisioningWorkflow"
    workflow_id = factory.Sequence(lambda n: f"tenant-provision-{n:08d}")
    task_queue = "tenantflow.tenant.0"
