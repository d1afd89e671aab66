"""Tasks the task benchmark enqueues (importable by module path, as the worker needs)."""

import time

from django.tasks import task


@task
def started_at() -> float:
    """The wall clock when the task began (the benchmark and the worker share the clock)."""
    return time.time()


@task
def little_work(name: str, ms: int) -> None:
    """Holds a worker slot ``ms`` milliseconds, then stores the wall clock when it finished
    in the active tenant's schema (read by the benchmark from the database)."""
    from tenants.workspace.models import Project

    time.sleep(ms / 1000)
    Project.objects.create(name=name, description=repr(time.time()))


@task
def record_start(name: str) -> None:
    """Stores the wall clock when it began in the active tenant's schema, where the benchmark
    reads it without asking Temporal (which would add load to what is measured)."""
    from tenants.workspace.models import Project

    Project.objects.create(name=name, description=repr(time.time()))
