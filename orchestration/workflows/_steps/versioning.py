"""Each workflow's Worker Versioning behaviour, declared only when the workers are versioned.

A workflow that declares ``versioning_behavior`` cannot run on an unversioned worker: the
server refuses every workflow task it completes ("versioning behavior cannot be specified
without deployment options being set with versioned mode", checked on the dev server), and
the SDK sends the declaration whatever the worker's mode. So workflows declare through
``when_versioned(...)``, which gives the behaviour on versioned workers and nothing
otherwise.

The mode is read from the environment (``TEMPORAL_WORKER_VERSIONING``, the variable the
settings read too) once, when this module is first imported: workflow classes are defined
at import, before any worker exists, and inside the workflow sandbox, where Django's
settings are out of reach (this module is passed through, so the sandbox sees this
process's value). ``run_temporal_worker`` refuses to start when the two disagree.
"""

import os

from temporalio.common import VersioningBehavior

__all__ = ["DECLARED", "VERSIONED", "when_versioned"]

VERSIONED = os.environ.get("TEMPORAL_WORKER_VERSIONING", "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}

# Every declaration, whether or not this process is versioned: what the docs and the tests
# read. Keyed by the workflow's class name.
DECLARED: dict[str, VersioningBehavior] = {}


def when_versioned(behaviour: VersioningBehavior, *, workflow: str) -> VersioningBehavior:
    """``behaviour`` for ``@workflow.defn(versioning_behavior=...)`` on versioned workers;
    ``UNSPECIFIED`` (no declaration) on unversioned ones."""
    DECLARED[workflow] = behaviour
    return behaviour if VERSIONED else VersioningBehavior.UNSPECIFIED
