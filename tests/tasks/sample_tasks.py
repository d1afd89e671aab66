"""Tasks the tests enqueue; the in-process workers import them by module path, like any."""

from django.db import connection
from django.tasks import task

from accounts.models import User
from tenants.workspace.models import Project


@task
def add(a, b):
    return a + b


@task
def boom(message):
    raise ValueError(message)


@task(takes_context=True)
def flaky(context, fail_times):
    """Fails its first ``fail_times`` attempts; returns the attempt that succeeded."""
    if context.attempt <= fail_times:
        raise RuntimeError(f"attempt {context.attempt} fails")
    return context.attempt


@task
def make_user(email):
    """A side effect that shows how often the task ran: a second run fails (unique email)."""
    return str(User.objects.create_user(email=email, password="x" * 20).pk)


@task
def tenant_view():
    """What the task sees: its schema and the projects there."""
    return {
        "schema": connection.schema_name,
        "projects": sorted(Project.objects.values_list("name", flat=True)),
    }


@task
def add_project(name):
    Project.objects.create(name=name)
    return name


not_a_task = "a plain string where a task's path should point"
