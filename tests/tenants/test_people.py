"""The people services under concurrency: each change takes the tenant's row lock, so two
changes that could each be allowed alone never both happen."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tenants.models import Invitation, InvitationStatus, Membership, Role, TenantStatus
from tenants.services.people import (
    PeopleError,
    invitation_accept,
    invitation_create,
    membership_set_role,
)
from tests.api.test_invitations import link_token
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def at_once(*calls) -> list[str]:
    """Run the calls in threads released together; each gives ``"ok"`` or its refusal's
    class name."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait()
        try:
            call()
            return "ok"
        except PeopleError as exc:
            return type(exc).__name__
        finally:
            connection.close()

    with ThreadPoolExecutor(len(calls)) as pool:
        return sorted(pool.map(run, calls))


def test_two_owners_demoting_each_other_at_once_leave_an_owner():
    first, second = UserFactory(), UserFactory()
    tenant = TenantFactory(owner=UserFactory(), status=TenantStatus.ACTIVE)
    # Two owners, neither the owner of record (who has left the owner role's membership).
    for user in (first, second):
        MembershipFactory(user=user, tenant=tenant, role=Role.OWNER)
    results = at_once(
        lambda: membership_set_role(
            tenant_id=tenant.pk, actor=first, user_id=second.pk, role="admin"
        ),
        lambda: membership_set_role(
            tenant_id=tenant.pk, actor=second, user_id=first.pk, role="admin"
        ),
    )
    assert results in (["NotAllowed", "ok"], ["Conflict", "ok"])
    assert Membership.objects.filter(tenant=tenant, role=Role.OWNER).count() == 1


def test_one_link_accepted_twice_at_once_joins_once():
    owner = UserFactory()
    tenant = TenantFactory(owner=owner, status=TenantStatus.ACTIVE)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    invitation = invitation_create(tenant_id=tenant.pk, actor=owner, email="twice@example.com")
    link = link_token(invitation)
    password = "a fresh passphrase 77"
    results = at_once(
        lambda: invitation_accept(raw_token=link, password=password),
        lambda: invitation_accept(raw_token=link, password=password),
    )
    assert results == ["InvitationInvalid", "ok"]
    assert Membership.objects.filter(tenant=tenant, user__email="twice@example.com").count() == 1
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.ACCEPTED
