"""Invitations over the API, without a worker: who may invite, list and revoke; accepting
as a new address (with a password) and as an existing account (with its login); every
refusal; the per-recipient quota; and what the outbox is told (ids only)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import TokenPurpose, User
from orchestration.models import OutboxEntry, OutboxKind
from tenants.models import Invitation, InvitationStatus, Membership, Role, Tenant, TenantStatus
from tenants.services.people import invitation_send_email
from tests.api.conftest import bearer
from tests.api.test_people import People
from tests.factories import MembershipFactory, TokenFactory, UserFactory

pytestmark = pytest.mark.django_db
NEW = "newcomer@example.com"
PASSWORD = "a fresh passphrase 77"


@pytest.fixture
def people():
    return People()


def invite(api, people, actor="owner", email=NEW, role="member"):
    return api.post(
        people.url("invitations/"),
        {"email": email, "role": role},
        format="json",
        **bearer(people.token[actor]),
    )


def link_token(invitation: Invitation) -> str:
    """The secret of the invitation's emailed link, as the invitee reads it."""
    mail.outbox.clear()
    assert invitation_send_email(invitation_id=invitation.pk)
    body = mail.outbox[-1].body
    return body.split("#token=", 1)[1].split()[0]


def accept(api, token, *, password=None, auth=None):
    body = {"token": token, **({"password": password} if password else {})}
    return api.post("/api/v1/invitations/accept/", body, format="json", **(auth or {}))


def test_an_owner_invites_a_new_address_which_accepts_with_a_password(api, people):
    response = invite(api, people)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["email"], body["role"], body["status"]) == (NEW, "member", "pending")
    invitation = Invitation.objects.get(pk=body["id"])
    # The workflow is told the invitation's id, never the address or the link.
    start = OutboxEntry.objects.get(workflow_type="TenantInvitationWorkflow")
    assert start.workflow_id == f"tenant-invitation-{invitation.pk}"
    assert NEW not in str(start.arguments)
    assert invitation.nonce not in str(start.arguments)

    token = link_token(invitation)
    assert token not in str(Invitation.objects.filter(pk=invitation.pk).values().get())
    accepted = accept(api, token, password=PASSWORD)
    assert accepted.status_code == 200, accepted.content
    answer = accepted.json()
    assert answer["role"] == "member"
    assert answer["tenant"]["id"] == str(people.tenant.pk)
    user = User.objects.get(email=NEW)
    assert user.email_verified_at is not None
    assert user.check_password(PASSWORD)
    me = api.get("/api/v1/me/", **bearer(answer["token"])).json()
    assert [(m["tenant"]["id"], m["role"]) for m in me["memberships"]] == [
        (str(people.tenant.pk), "member")
    ]
    assert api.get(people.url(), **bearer(answer["token"])).status_code == 200
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ACCEPTED
    assert invitation.accepted_by == user
    signal = OutboxEntry.objects.get(kind=OutboxKind.SIGNAL)
    assert (signal.workflow_id, signal.workflow_type) == (start.workflow_id, "accepted")
    # Single-use.
    again = accept(api, token, password=PASSWORD)
    assert again.status_code == 400
    assert "token" in again.json()


def test_an_existing_account_accepts_only_logged_in_as_itself(api, people):
    invitee = UserFactory(email="known@example.com")
    invitation = Invitation.objects.get(
        pk=invite(api, people, email="Known@Example.com").json()["id"]
    )
    token = link_token(invitation)
    anonymous = accept(api, token, password=PASSWORD)
    assert anonymous.status_code == 401
    assert "log" in anonymous.json()["detail"] or "API token" in anonymous.json()["detail"]
    other = accept(api, token, auth=bearer(people.token["outsider"]))
    assert other.status_code == 403
    assert not Membership.objects.filter(user=invitee).exists()
    own = TokenFactory(user=invitee, purpose=TokenPurpose.API).raw
    accepted = accept(api, token, auth=bearer(own))
    assert accepted.status_code == 200, accepted.content
    assert Membership.objects.get(user=invitee, tenant=people.tenant).role == Role.MEMBER
    assert not invitee.check_password(PASSWORD)  # a password sent along changes nothing


def test_a_new_address_needs_a_good_password_and_no_other_login(api, people):
    invitation = Invitation.objects.get(pk=invite(api, people).json()["id"])
    token = link_token(invitation)
    missing = accept(api, token)
    assert missing.status_code == 400
    assert "password" in missing.json()
    weak = accept(api, token, password="password")
    assert weak.status_code == 400
    assert "password" in weak.json()
    logged_in = accept(api, token, password=PASSWORD, auth=bearer(people.token["member"]))
    assert logged_in.status_code == 403
    assert not User.objects.filter(email=NEW).exists()
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.PENDING


@pytest.mark.parametrize(
    "body",
    [{}, {"token": ""}, {"token": 5}, {"token": "x" * 201}, {"token": "nope"}, ["token"], "x"],
)
def test_bad_accept_input_is_400(api, body):
    response = api.post("/api/v1/invitations/accept/", body, format="json")
    assert response.status_code == 400


def test_an_expired_or_revoked_link_is_refused(api, people):
    first = Invitation.objects.get(pk=invite(api, people).json()["id"])
    token = link_token(first)
    Invitation.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert accept(api, token, password=PASSWORD).status_code == 400
    assert not invitation_send_email(invitation_id=first.pk)  # no email for it either
    # Its time is up: a new invitation of the address is allowed (the old one expires).
    people.tenant.refresh_from_db()
    from django.test import override_settings

    with override_settings(EMAIL_RECIPIENT_COOLDOWN=0):
        second = Invitation.objects.get(pk=invite(api, people).json()["id"])
    assert Invitation.objects.get(pk=first.pk).status == InvitationStatus.EXPIRED
    token = link_token(second)
    revoked = api.delete(people.url(f"invitations/{second.pk}/"), **bearer(people.token["admin"]))
    assert revoked.status_code == 204
    assert accept(api, token, password=PASSWORD).status_code == 400
    assert not User.objects.filter(email=NEW).exists()
    signal = OutboxEntry.objects.get(kind=OutboxKind.SIGNAL)
    assert (signal.workflow_id, signal.workflow_type) == (
        f"tenant-invitation-{second.pk}",
        "revoked",
    )


def test_owners_and_admins_list_pending_invitations_members_cannot(api, people):
    invite(api, people)
    for name in ("owner", "admin"):
        listed = api.get(people.url("invitations/"), **bearer(people.token[name]))
        assert [i["email"] for i in listed.json()] == [NEW]
    refused = api.get(people.url("invitations/"), **bearer(people.token["member"]))
    assert refused.status_code == 403
    assert (
        api.get(people.url("invitations/"), **bearer(people.token["outsider"])).status_code == 404
    )


@pytest.mark.parametrize(
    ("actor", "role", "code"),
    [("member", "member", 403), ("admin", "owner", 403), ("outsider", "member", 404)],
)
def test_invitations_refused(api, people, actor, role, code):
    response = invite(api, people, actor=actor, role=role)
    assert response.status_code == code
    assert response.json()["detail"]
    assert not Invitation.objects.exists()
    assert not OutboxEntry.objects.exists()


def test_an_admin_invites_an_admin_an_owner_invites_an_owner(api, people):
    assert invite(api, people, actor="admin", role="admin").status_code == 201
    assert invite(api, people, email="co@example.com", role="owner").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not an email"},
        {"email": NEW, "role": "king"},
        {"email": 5},
        {"email": "a" * 250 + "@example.com"},
        ["email"],
    ],
)
def test_bad_invitation_input_is_400(api, people, body):
    response = api.post(
        people.url("invitations/"), body, format="json", **bearer(people.token["owner"])
    )
    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_a_member_or_a_pending_invitee_is_not_invited_twice(api, people):
    member = invite(api, people, email="MEMBER@example.com")
    assert member.status_code == 409
    assert invite(api, people).status_code == 201
    again = invite(api, people, actor="admin", email=NEW.upper())
    assert again.status_code == 409
    assert Invitation.objects.count() == 1


def test_invitations_are_limited_per_recipient(api, people, settings):
    settings.EMAIL_RECIPIENT_COOLDOWN = 0
    settings.EMAIL_RECIPIENT_DAILY_LIMIT = 2
    for _ in range(2):
        assert invite(api, people).status_code == 201
        Invitation.objects.update(status=InvitationStatus.REVOKED)
    limited = invite(api, people)
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert Invitation.objects.count() == 2


def test_revoking_is_for_owners_and_admins_and_pending_invitations(api, people):
    invitation_id = invite(api, people).json()["id"]
    url = people.url(f"invitations/{invitation_id}/")
    assert api.delete(url, **bearer(people.token["member"])).status_code == 403
    assert (
        api.delete(people.url("invitations/nope/"), **bearer(people.token["owner"])).status_code
        == 404
    )
    assert api.delete(url, **bearer(people.token["owner"])).status_code == 204
    assert api.delete(url, **bearer(people.token["owner"])).status_code == 404  # not pending
    assert api.get(people.url("invitations/"), **bearer(people.token["owner"])).json() == []


def test_a_suspended_tenant_takes_no_invitations_nor_acceptances(api, people):
    invitation = Invitation.objects.get(pk=invite(api, people).json()["id"])
    token = link_token(invitation)
    Tenant.objects.filter(pk=people.tenant.pk).update(
        status=TenantStatus.SUSPENDED, suspension_reason="billing"
    )
    assert invite(api, people, email="x@example.com").status_code == 403
    assert accept(api, token, password=PASSWORD).status_code == 409
    assert not User.objects.filter(email=NEW).exists()


def test_accepting_as_a_member_already_keeps_the_role(api, people):
    invitation = Invitation.objects.get(
        pk=invite(api, people, email="late@example.com", role="member").json()["id"]
    )
    late = UserFactory(email="late@example.com")
    MembershipFactory(user=late, tenant=people.tenant, role=Role.ADMIN)
    token = link_token(invitation)
    own = TokenFactory(user=late, purpose=TokenPurpose.API).raw
    assert accept(api, token, auth=bearer(own)).json()["role"] == "admin"
