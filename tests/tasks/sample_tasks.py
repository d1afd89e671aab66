"""Tasks the tests enqueue; the in-process workers import them by module path, like any."""

from django.db import connection
from django.tasks import TaskContext, task

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


# Django's own test tasks (django/django tests/tasks/tasks.py), for the contract tests.


@task
def noop_task(*args, **kwargs):
    return None


@task
async def noop_task_async(*args, **kwargs):
    return None


@task
def calculate_meaning_of_life():
    return 42


@task
def failing_task_value_error():
    raise ValueError("This Task failed due to ValueError")


@task
def failing_task_system_exit():
    raise SystemExit("This Task failed due to SystemExit")


@task
def complex_exception():
    raise ValueError(ValueError("This task failed"))


@task
def complex_return_value():
    return {"not": {"json": complex_return_value}}  # a Task is no JSON


@task(takes_context=True)
def get_task_id(context):
    return context.task_result.id


@task(takes_context=True)
def check_context(context, attempt):
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt


@task
def text_of_length(length):
    return "x" * length
