"""Tasks the task benchmark enqueues (importable by module path, as the worker needs)."""

import time

from django.tasks import task


@task
def started_at() -> float:
    """The wall clock when the task began (the benchmark and the worker share the clock)."""
    return time.time()


@task
def little_work(ms: int) -> float:
    """A task that holds a worker slot ``ms`` milliseconds; returns when it began."""
    began = time.time()
    time.sleep(ms / 1000)
    return began


@task
def record_start(name: str) -> None:
    """Stores the wall clock when it began in the active tenant's schema, where the benchmark
    reads it without asking Temporal (which would add load to what is measured)."""
    from tenants.workspace.models import Project

    Project.objects.create(name=name, description=repr(time.time()))
