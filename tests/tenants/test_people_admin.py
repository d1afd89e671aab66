"""The tenant admin's invitation buttons: who may use them, and what a refusal says."""

import pytest
from django.urls import reverse

from orchestration.models import OutboxEntry, OutboxKind
from tenants.models import Invitation, InvitationStatus, Role, TenantStatus
from tenants.services.people import invitation_create
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.tenants.test_admin import HOST, PUBLIC, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation():
    owner = UserFactory(email="owner@example.com")
    tenant = TenantFactory(owner=owner, subdomain="crew", status=TenantStatus.ACTIVE)
    MembershipFactory(user=owner, tenant=tenant, role=Role.OWNER)
    return invitation_create(tenant_id=tenant.pk, actor=owner, email="new@example.com")


def url(invitation, action):
    return reverse(
        "admin:tenants_tenant_invitation",
        args=[invitation.tenant_id, invitation.pk, action],
        urlconf=PUBLIC,
    )


def test_a_get_changes_nothing(client, invitation):
    client.force_login(UserFactory(email="root@example.com", superuser=True))
    assert client.get(url(invitation, "revoke"), **HOST).status_code == 405
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.PENDING


def test_staff_without_the_change_permission_or_an_unknown_action_is_refused(client, invitation):
    from django.contrib.auth.models import Permission

    user = staff("view_tenant")
    client.force_login(user)
    assert client.post(url(invitation, "revoke"), **HOST).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="change_tenant"))
    assert client.post(url(invitation, "accept"), **HOST).status_code == 403
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.PENDING
    assert client.post(url(invitation, "revoke"), **HOST).status_code == 302
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.REVOKED


def test_revoking_twice_says_which_tenant_and_why(client, invitation):
    client.force_login(UserFactory(email="root@example.com", superuser=True))
    client.post(url(invitation, "revoke"), **HOST)
    response = client.post(url(invitation, "revoke"), follow=True, **HOST)
    text = response.content.decode()
    assert "The invitation of new@example.com to Crew (crew) was not revoked" in text
    assert "No such pending invitation" in text
    assert OutboxEntry.objects.filter(kind=OutboxKind.SIGNAL).count() == 1


def test_a_resend_for_a_suspended_tenant_is_refused(client, invitation):
    client.force_login(UserFactory(email="root@example.com", superuser=True))
    invitation.tenant.__class__.objects.filter(pk=invitation.tenant_id).update(
        status=TenantStatus.SUSPENDED, suspension_reason="billing"
    )
    response = client.post(url(invitation, "resend"), follow=True, **HOST)
    assert "was not resent: This organisation is suspended" in response.content.decode()
    assert not OutboxEntry.objects.filter(kind=OutboxKind.SIGNAL).exists()
