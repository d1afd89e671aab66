"""Workflows the test settings add to the project's workers (TEMPORAL_WORKER_EXTENSIONS)."""

import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.common import VersioningBehavior

from orchestration.registry import Hosted
from orchestration.routing import QueueKind

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import django_activity
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class SlowStepInput:
    marker_dir: str
    seconds: float = 2.0


@django_activity
def slow_step(params: SlowStepInput) -> str:
    """Writes ``started`` at once and ``finished`` after ``seconds``, heartbeating."""
    marker = Path(params.marker_dir)
    (marker / "started").write_text(activity.info().task_queue)
    # Deliberately timed: it stands for work that takes ``seconds`` (the SIGTERM test needs
    # an activity still running when the signal comes); there is no condition to wait for.
    deadline = time.monotonic() + params.seconds
    while time.monotonic() < deadline:
        activity.heartbeat()
        time.sleep(0.1)
    (marker / "finished").write_text("ok")
    return "done"


# Declared, as every workflow must be on a versioned worker.
@workflow.defn(
    versioning_behavior=when_versioned(VersioningBehavior.PINNED, workflow="SlowStepWorkflow")
)
class SlowStepWorkflow:
    @workflow.run
    async def run(self, params: SlowStepInput) -> str:
        return await workflow.execute_activity(
            slow_step, params, start_to_close_timeout=timedelta(seconds=60)
        )


@workflow.defn(name="TenantProvisioningWorkflow")
class EchoProvisioningWorkflow:
    """Stands in for the real provisioning workflow: completes at once with its input."""

    @workflow.run
    async def run(self, arguments: dict) -> dict:
        return arguments


REGISTRY = {
    QueueKind.TENANT: Hosted(workflows=(SlowStepWorkflow,), activities=(slow_step,)),
}
