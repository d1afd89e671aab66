"""A tenant's people over the API: its members and their roles, ownership, and invitations.
Every endpoint checks the caller's role in the tenant (``tenants.roles``): a tenant the
caller may not see answers 404, an action their role does not allow 403 with a ``detail``;
a suspended tenant answers 403 with its state (its people are frozen until reactivated)."""

import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.serializers import TextField, UserSerializer
from accounts.services import EmailQuotaExceeded
from core.openapi import ErrorSerializer, error_responses, field_errors
from tenants.api.serializers import NewPasswordField, TenantSummarySerializer
from tenants.api.views import TENANT_ID, suspended_refusal
from tenants.models import Invitation, InvitationStatus, Role, TenantStatus
from tenants.roles import Action, role_may
from tenants.selectors import tenant_members, tenant_visible_to
from tenants.services.people import (
    Conflict,
    InvitationInvalid,
    LoginRequired,
    NotAllowed,
    NotFound,
    PeopleError,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_remove,
    membership_set_role,
    tenant_transfer_ownership,
)

USER_ID = OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
INVITATION_ID = OpenApiParameter("invitation_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


def refusal(exc: PeopleError) -> Response:
    """A refused change as its answer: 403, 404 or 409 with the reason as ``detail``."""
    if isinstance(exc, InvitationInvalid):
        raise serializers.ValidationError({"token": [str(exc)]})
    if isinstance(exc, LoginRequired):
        raise exceptions.NotAuthenticated(str(exc))
    code = {
        NotAllowed: status.HTTP_403_FORBIDDEN,
        NotFound: status.HTTP_404_NOT_FOUND,
        Conflict: status.HTTP_409_CONFLICT,
    }[type(exc)]
    return Response({"detail": str(exc)}, status=code)


def quota_refusal(exc: EmailQuotaExceeded) -> Response:
    """429: the address had its share of invitation emails; nothing was recorded."""
    return Response(
        {"detail": f"No invitation email can go to this address now: {exc}."},
        status=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(exc.retry_after)},
    )


class TenantPeopleEndpoint(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "tenant"

    def tenant_for(self, request, tenant_id, action: Action, refused: str):
        """``(tenant, role, None)`` when the caller may do ``action``; else ``(…, answer)``:
        404 for a tenant they may not see, 403 for a suspended tenant or a role that does
        not allow it."""
        found = tenant_visible_to(user=request.user, tenant_id=tenant_id)
        if found is None:
            raise Http404
        tenant, role = found
        if tenant.status == TenantStatus.SUSPENDED:
            return tenant, role, suspended_refusal(tenant)
        if not role_may(role, action):
            return tenant, role, Response({"detail": refused}, status=status.HTTP_403_FORBIDDEN)
        return tenant, role, None

    def change(self, request, tenant_id, action: Action, refused: str, body, do) -> Response:
        """The answer to a change: 404/403 as ``tenant_for`` says, 400 for a body that
        ``body`` (a serializer class, or None for no body) refuses, else what
        ``do(tenant, validated_data)`` answers; a refusal of the service (``PeopleError``)
        as ``refusal`` says."""
        tenant, _, refusal_answer = self.tenant_for(request, tenant_id, action, refused)
        if refusal_answer:
            return refusal_answer
        data = {}
        if body is not None:
            parsed = body(data=request.data)
            parsed.is_valid(raise_exception=True)
            data = parsed.validated_data
        try:
            return do(tenant, data)
        except PeopleError as exc:
            return refusal(exc)


# A change with a JSON body: what a refusal can be.
CHANGE_ERRORS = (400, 401, 403, 404, 409, 413, 429, 503)


def change_errors(name: str, serializer_class) -> dict:
    return error_responses(*CHANGE_ERRORS, fields=field_errors(name, serializer_class))


# --- members -----------------------------------------------------------------------------


class MemberSerializer(serializers.Serializer):
    user = UserSerializer()
    role = serializers.ChoiceField(choices=Role.choices)
    owner_of_record = serializers.BooleanField(
        help_text="The tenant's owner of record (shown and emailed as its owner)."
    )
    joined_at = serializers.DateTimeField()


def member_body(membership) -> dict:
    return MemberSerializer(
        {
            "user": membership.user,
            "role": membership.role,
            "owner_of_record": membership.user_id == membership.tenant.owner_id,
            "joined_at": membership.created_at,
        }
    ).data


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class OwnershipSerializer(serializers.Serializer):
    user_id = serializers.UUIDField(help_text="A member of the tenant, to become its owner.")


class MembersView(TenantPeopleEndpoint):
    @extend_schema(
        parameters=[TENANT_ID],
        responses={200: MemberSerializer(many=True), **error_responses(401, 403, 404, 429, 503)},
    )
    def get(self, request, tenant_id):
        """The tenant's members, owners first; any member may read them."""
        tenant, _, refused = self.tenant_for(request, tenant_id, Action.READ, "")
        if refused:
            return refused
        return Response([member_body(m) for m in tenant_members(tenant=tenant)])


class MemberView(TenantPeopleEndpoint):
    @extend_schema(
        parameters=[TENANT_ID, USER_ID],
        request=RoleSerializer,
        responses={
            200: MemberSerializer,
            **change_errors("RoleError", RoleSerializer),
        },
    )
    def patch(self, request, tenant_id, user_id):
        """Change a member's role: an owner any role of anyone, an admin between admin and
        member; `409` for the owner of record or the last owner leaving the owner role."""

        def do(tenant, data):
            membership = membership_set_role(
                tenant_id=tenant.pk, actor=request.user, user_id=_uuid(user_id), role=data["role"]
            )
            return Response(member_body(membership))

        refused = "Only an owner or an admin can change roles."
        return self.change(request, tenant_id, Action.MANAGE_MEMBERS, refused, RoleSerializer, do)

    @extend_schema(
        parameters=[TENANT_ID, USER_ID],
        responses={204: None, **error_responses(401, 403, 404, 409, 429, 503)},
    )
    def delete(self, request, tenant_id, user_id):
        """Remove a member (or leave, with one's own id): their access to the tenant ends at
        once. `409` for the owner of record and the last owner."""

        def do(tenant, _):
            membership_remove(tenant_id=tenant.pk, actor=request.user, user_id=_uuid(user_id))
            return Response(status=status.HTTP_204_NO_CONTENT)

        return self.change(request, tenant_id, Action.READ, "", None, do)


class OwnershipView(TenantPeopleEndpoint):
    @extend_schema(
        parameters=[TENANT_ID],
        request=OwnershipSerializer,
        responses={
            200: MemberSerializer,
            **change_errors("OwnershipError", OwnershipSerializer),
        },
    )
    def post(self, request, tenant_id):
        """Make a member the owner of record (with the owner role); the previous one stays
        an owner. Owners only."""

        def do(tenant, data):
            user_id = data["user_id"]
            tenant_transfer_ownership(tenant_id=tenant.pk, actor=request.user, user_id=user_id)
            membership = tenant.memberships.select_related("user", "tenant").get(user_id=user_id)
            return Response(member_body(membership))

        refused = "Only an owner can transfer the ownership."
        return self.change(request, tenant_id, Action.TRANSFER, refused, OwnershipSerializer, do)


# --- invitations -------------------------------------------------------------------------


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.UUIDField(source="invited_by_id", allow_null=True, read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created_at", "expires_at"]


class InviteSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class AcceptSerializer(serializers.Serializer):
    token = TextField(max_length=200)
    password = NewPasswordField(
        max_length=256,
        trim_whitespace=False,
        write_only=True,
        required=False,
        help_text="Only for an address without an account: the new account's password.",
    )


class AcceptedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="An API token of the account that joined.")
    user = UserSerializer()
    role = serializers.ChoiceField(choices=Role.choices)
    tenant = TenantSummarySerializer()


INVITE_ONLY = "Only an owner or an admin can invite or see invitations."
QUOTA = OpenApiResponse(
    ErrorSerializer,
    description="Too many requests (`Retry-After` says how many seconds to wait), or the "
    "address had its share of invitation emails (`EMAIL_RECIPIENT_COOLDOWN`, "
    "`EMAIL_RECIPIENT_DAILY_LIMIT`): nothing was recorded.",
)


class InvitationsView(TenantPeopleEndpoint):
    @extend_schema(
        parameters=[TENANT_ID],
        responses={
            200: InvitationSerializer(many=True),
            **error_responses(401, 403, 404, 429, 503),
        },
    )
    def get(self, request, tenant_id):
        """The tenant's pending invitations, newest first (owners and admins)."""
        tenant, _, refused = self.tenant_for(request, tenant_id, Action.INVITE, INVITE_ONLY)
        if refused:
            return refused
        pending = tenant.invitations.filter(status=InvitationStatus.PENDING)
        return Response(InvitationSerializer(pending, many=True).data)

    @extend_schema(
        parameters=[TENANT_ID],
        request=InviteSerializer,
        responses={
            201: InvitationSerializer,
            **change_errors("InviteError", InviteSerializer),
            429: QUOTA,
        },
    )
    def post(self, request, tenant_id):
        """Invite an address with a role (an owner any role, an admin `admin` or `member`):
        its invitation workflow emails a single-use link, reminds once after
        `INVITATION_REMIND_AFTER` seconds and expires it after `INVITATION_TTL`. `409` when
        the address is a member already or has a pending invitation here."""

        def do(tenant, data):
            try:
                invitation = invitation_create(tenant_id=tenant.pk, actor=request.user, **data)
            except EmailQuotaExceeded as exc:
                return quota_refusal(exc)
            return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

        return self.change(request, tenant_id, Action.INVITE, INVITE_ONLY, InviteSerializer, do)


class InvitationView(TenantPeopleEndpoint):
    @extend_schema(
        parameters=[TENANT_ID, INVITATION_ID],
        responses={204: None, **error_responses(401, 403, 404, 409, 429, 503)},
    )
    def delete(self, request, tenant_id, invitation_id):
        """Revoke a pending invitation: its link stops working at once."""

        def do(tenant, _):
            invitation_revoke(
                tenant_id=tenant.pk, actor=request.user, invitation_id=_uuid(invitation_id)
            )
            return Response(status=status.HTTP_204_NO_CONTENT)

        return self.change(request, tenant_id, Action.INVITE, INVITE_ONLY, None, do)


class AcceptInvitationView(APIView):
    """Anyone holding an invitation's link may call it; an address that has an account must
    also send that account's API token."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "verify"

    @extend_schema(
        request=AcceptSerializer,
        responses={
            200: AcceptedSerializer,
            **error_responses(
                400,
                401,
                403,
                409,
                413,
                429,
                503,
                fields=field_errors("AcceptInvitationError", AcceptSerializer),
            ),
        },
    )
    def post(self, request):
        """Accept an invitation: the invited address joins the tenant with the invitation's
        role, and gets an API token. An address with an account must be logged in as it
        (`401` without a token, `403` as another account); one without chooses a
        `password` (its email then counts as verified). `400` for a link that is unknown,
        used, revoked or expired."""
        data = AcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            membership, raw = invitation_accept(
                raw_token=data.validated_data["token"],
                user=request.user,
                password=data.validated_data.get("password"),
            )
        except PeopleError as exc:
            return refusal(exc)
        body = {
            "token": raw,
            "user": membership.user,
            "role": membership.role,
            "tenant": membership.tenant,
        }
        return Response(AcceptedSerializer(body).data)
