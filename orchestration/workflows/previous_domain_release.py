"""A previous subdomain's hold: sleep (a durable timer) until it expires, then free it. A
compare-and-set frees it only once its ``expires_at`` has passed and only while it is
still a previous domain, so a late or repeated run, or one whose domain the tenant took
back, changes nothing."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import domains as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, SHORT, within
    from orchestration.workflows._steps.inputs import WorkflowInput, require_positive
    from orchestration.workflows._steps.versioning import when_versioned


@dataclass
class PreviousDomainReleaseInput(WorkflowInput):
    domain_id: int = 0  # required: the default fails validation
    # Seconds from the change to the hold's end (TENANT_OLD_DOMAIN_TTL); the row's
    # expires_at has the last word.
    hold_seconds: int = 30 * 24 * 3600
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_positive("domain_id", self.domain_id)
        require_positive("hold_seconds", self.hold_seconds)
        require_positive("retry_window_seconds", self.retry_window_seconds)


# Auto-upgrade: a run waits TENANT_OLD_DOMAIN_TTL (30 days); pinned, it would keep its
# build's workers alive that long. Every change to it goes behind workflow.patched.
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.AUTO_UPGRADE, workflow="PreviousDomainReleaseWorkflow"
    ),
)
class PreviousDomainReleaseWorkflow:
    @workflow.run
    async def run(self, params: PreviousDomainReleaseInput | dict) -> None:
        params = PreviousDomainReleaseInput.parse(params)
        left = params.hold_seconds
        while left > 0:
            await workflow.sleep(timedelta(seconds=left))
            left = await workflow.execute_activity(
                steps.domain_release_previous,
                params.domain_id,
                **within(SHORT, params.retry_window_seconds),
            )
