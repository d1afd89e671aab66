"""What each role may do in a tenant: the one table every tenant endpoint and the admin
check. A role not listed for an action is refused it (``403`` in the API)."""

from enum import StrEnum

from tenants.models import Role


class Action(StrEnum):
    READ = "read"  # the tenant's status, its members and pending invitations
    INVITE = "invite"  # invite people, resend and revoke invitations
    MANAGE_MEMBERS = "manage_members"  # change roles, remove members
    EXPORT = "export"  # export the tenant's data
    CHANGE_DOMAINS = "change_domains"  # the subdomain and custom domains
    DELETE = "delete"  # delete the tenant
    TRANSFER = "transfer"  # make another member the owner of record


ALLOWED: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset(
        {Action.READ, Action.INVITE, Action.MANAGE_MEMBERS, Action.EXPORT, Action.CHANGE_DOMAINS}
    ),
    Role.MEMBER: frozenset({Action.READ}),
}

# Who may grant a role (in an invitation or a change of role): an owner any role, an admin
# the roles below owner.
GRANTABLE: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Role.values),
    Role.ADMIN: frozenset({Role.ADMIN, Role.MEMBER}),
    Role.MEMBER: frozenset(),
}


def role_may(role: str, action: Action) -> bool:
    return action in ALLOWED.get(role, frozenset())


def role_may_grant(role: str, granted: str) -> bool:
    return granted in GRANTABLE.get(role, frozenset())
