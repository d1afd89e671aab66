"""Workflows used only by the harness tests (sandboxed workflows must be importable)."""

from datetime import timedelta

from temporalio import workflow


@workflow.defn
class SleepForADayWorkflow:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(days=1))
        return "woke"
