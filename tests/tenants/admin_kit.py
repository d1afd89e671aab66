"""Running the tenant admin's actions in tests, as a browser posts them."""

CHANGELIST = "/admin/tenants/tenant/"
HOST = {"HTTP_HOST": "localhost"}


def run_action(client, action, tenants, *, url=CHANGELIST, prefix="", **extra):
    """Post ``action`` for ``tenants`` from the list (or, with ``url`` a tenant's page and
    ``prefix`` ``"CHANGE_FORM-"``, from that page's action form); follows the redirect."""
    data = {f"{prefix}action": action, "_selected_action": [str(t.pk) for t in tenants], **extra}
    return client.post(url, data, follow=True, **HOST)


def texts(response) -> list[str]:
    """The messages the admin showed after the action."""
    return [str(m) for m in response.context["messages"]]
