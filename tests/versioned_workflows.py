"""Workflows used only by the Worker Versioning test (sandboxed workflows must be
importable). The same class is hosted by two workers that differ only in build id; each
run reports the build id of the worker that ran its workflow task."""

from temporalio import workflow
from temporalio.common import VersioningBehavior


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class PinnedWaitWorkflow:
    def __init__(self) -> None:
        self._release = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._release)
        # The build id of the worker running this task: a pinned run must still be on its
        # first one when it is released.
        version = workflow.info().get_current_deployment_version()
        return version.build_id if version else ""

    @workflow.signal
    def release(self) -> None:
        self._release = True
