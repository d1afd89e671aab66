"""Property-based fuzzing of the signup and people endpoints: whatever arrives, never a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

text = st.one_of(st.text(max_size=80), st.text(alphabet="abc-_.@\"';\\\x00 ", max_size=70))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
signup_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "email": text | json_values,
            "password": text | json_values,
            "organization_name": text | json_values,
            "subdomain": text | json_values,
        }
    ),
    st.fixed_dictionaries(
        {
            "email": st.emails(),
            "password": st.text(min_size=0, max_size=100),
            "organization_name": st.text(max_size=250),
            "subdomain": st.from_regex(r"[a-zA-Z0-9-]{0,70}", fullmatch=True),
        }
    ),
    json_values,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=signup_bodies)
def test_signup_never_answers_500(api, body):
    from django.core.cache import cache

    cache.clear()  # the rate limit is not what is being fuzzed
    response = api.post("/api/v1/signup/", json.dumps(body), content_type="application/json")
    assert response.status_code in {202, 400}, (body, response.content[:300])


people_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "email": st.emails() | text | json_values,
            "role": st.sampled_from(["member", "admin", "owner", "x"]) | json_values,
        }
    ),
    st.fixed_dictionaries({"role": text | json_values}),
    st.fixed_dictionaries({"user_id": st.uuids().map(str) | text | json_values}),
    st.fixed_dictionaries({"token": text | json_values, "password": text | json_values}),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=people_bodies,
    where=st.sampled_from(["invitations/", "members/{me}/", "ownership/", "accept"]),
)
def test_the_people_endpoints_never_answer_500(api, body, where):
    """An owner's calls to their own tenant's people endpoints, and anyone's acceptance,
    with whatever body: answered, never a 500, and a refusal changes nothing."""
    from django.core.cache import cache

    from tenants.models import Invitation, Membership, Role
    from tests.factories import MembershipFactory, TokenFactory

    cache.clear()
    token = TokenFactory()
    tenant = MembershipFactory(user=token.user, tenant__owner=token.user, role=Role.OWNER).tenant
    if where == "accept":
        url = "/api/v1/invitations/accept/"
    else:
        url = f"/api/v1/tenants/{tenant.pk}/" + where.format(me=token.user.pk)
    method = api.patch if where.startswith("members") else api.post
    response = method(
        url,
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token.raw}",
    )
    assert response.status_code < 500, (body, response.content[:300])
    if response.status_code >= 400:
        assert Membership.objects.get(tenant=tenant).role == Role.OWNER
        assert not Invitation.objects.filter(tenant=tenant).exists()
