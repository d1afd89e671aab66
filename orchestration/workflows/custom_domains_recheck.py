"""Custom domains' re-check: look every verified (failing, stopped) custom domain's TXT
record up again, those looked up longest ago first, ``limit`` per run, ``CONCURRENCY`` at
once. A missing record warns the owner and, after ``grace_seconds``, stops the domain
(``tenants.services.domains.custom_domain_recheck``). Runs on a Temporal Schedule
(``manage.py sync_temporal_schedules``)."""

import asyncio
from collections import Counter
from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from orchestration.activities import domains as steps
    from orchestration.workflows._steps.common import MEDIUM, SHORT, within
    from orchestration.workflows._steps.inputs import WorkflowInput, invalid, require_positive
    from orchestration.workflows._steps.versioning import when_versioned

# Lookups in flight at once: each waits on a nameserver, not on the database.
CONCURRENCY = 8
# A scheduled run gives up on a step after this (the next run looks again).
WINDOW = 3600


@dataclass
class CustomDomainsRecheckInput(WorkflowInput):
    grace_seconds: int = 3 * 24 * 3600
    limit: int = 500

    def validate(self) -> None:
        if not isinstance(self.grace_seconds, int) or self.grace_seconds < 0:
            raise invalid("grace_seconds", "must be a non-negative integer")
        require_positive("limit", self.limit)


# Pinned: each scheduled re-check is short; the next one starts on the current build.
@workflow.defn(
    versioning_behavior=when_versioned(
        VersioningBehavior.PINNED, workflow="CustomDomainsRecheckWorkflow"
    ),
)
class CustomDomainsRecheckWorkflow:
    @workflow.run
    async def run(self, params: CustomDomainsRecheckInput | dict) -> dict[str, int]:
        """Returns how many domains ended in each status."""
        params = CustomDomainsRecheckInput.parse(params)
        due = await workflow.execute_activity(
            steps.custom_domains_due, params.limit, **within(SHORT, WINDOW)
        )
        outcome: Counter[str] = Counter()
        for start in range(0, len(due), CONCURRENCY):
            statuses = await asyncio.gather(
                *(
                    workflow.execute_activity(
                        steps.custom_domain_recheck,
                        args=[domain_id, params.grace_seconds],
                        **within(MEDIUM, WINDOW),
                    )
                    for domain_id in due[start : start + CONCURRENCY]
                )
            )
            outcome.update(status or "removed" for status in statuses)
        return dict(outcome)
