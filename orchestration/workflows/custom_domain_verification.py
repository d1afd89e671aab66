"""A new custom domain's verification: look its TXT record up, and again after waits
(durable timers) that double from ``first_interval_seconds`` up to
``max_interval_seconds``, until it is found (the domain is verified and serves) or
``timeout_seconds`` have passed (it is expired). A domain removed meanwhile ends the run.
The ``state`` query says where it is."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import domains as steps
    from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, SHORT, within
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned

PENDING = "pending"


@dataclass
class CustomDomainVerificationInput(WorkflowInput):
    domain_id: int = 0  # required: the default fails validation
    first_interval_seconds: int = 30
    max_interval_seconds: int = 3600
    timeout_seconds: int = 3 * 24 * 3600
    retry_window_seconds: int = DEFAULT_RETRY_WINDOW

    def validate(self) -> None:
        require_positive("domain_id", self.domain_id)
        require_positive("first_interval_seconds", self.first_interval_seconds)
        require_positive("max_interval_seconds", self.max_interval_seconds)
        if self.max_interval_seconds < self.first_interval_seconds:
            raise invalid("max_interval_seconds", "must be at least first_interval_seconds")
        require_positive("timeout_seconds", self.timeout_seconds)
        require_positive("retry_window_seconds", self.retry_window_seconds)


@dataclass
class VerificationState:
    status: str  # pending | verified | expired | removed
    lookups: int


# Auto-upgrade: a run waits up to CUSTOM_DOMAIN_VERIFY_TIMEOUT (days) for the record.
# Every change to it goes behind workflow.patched (docs/versioning.md).
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.AUTO_UPGRADE, workflow="CustomDomainVerificationWorkflow"
    ),
)
class CustomDomainVerificationWorkflow:
    def __init__(self) -> None:
        self._state = VerificationState(status=PENDING, lookups=0)

    @workflow.query
    def state(self) -> VerificationState:
        return self._state

    @workflow.run
    async def run(self, params: CustomDomainVerificationInput | dict) -> VerificationState:
        params = CustomDomainVerificationInput.parse(params)
        step = within(SHORT, params.retry_window_seconds)
        deadline = workflow.now() + timedelta(seconds=params.timeout_seconds)
        interval = params.first_interval_seconds
        while True:
            status = await workflow.execute_activity(
                steps.custom_domain_verify, params.domain_id, **step
            )
            self._state.lookups += 1
            if status != PENDING:
                return self._finish(status or "removed")
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                break
            await workflow.sleep(timedelta(seconds=min(interval, left)))
            interval = min(interval * 2, params.max_interval_seconds)
        expired = await workflow.execute_activity(
            steps.custom_domain_expire, params.domain_id, **step
        )
        return self._finish("expired" if expired else "removed")

    def _finish(self, status: str) -> VerificationState:
        self._state.status = status
        return self._state
