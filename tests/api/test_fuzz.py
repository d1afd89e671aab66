"""Property-based fuzzing of the signup endpoint: whatever arrives, never a 500."""

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
