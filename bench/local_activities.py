"""What a local activity costs by itself: a workflow of N no-op local activities against one
of none, started eagerly on the Temporal dev server, one run at a time, interleaved.

The floor under every provisioning step and every ``local`` task: the SDK's round trip per
local activity (a workflow activation, the activity's thread, the result back to the
workflow), with no database and no Django.

    .venv/bin/python bench/local_activities.py [--runs 30] [--steps 7]
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from devstack.localservices import TemporalDevServer


@activity.defn
def noop(value: str) -> str:
    return value


@workflow.defn(sandboxed=False)
class LocalSteps:
    @workflow.run
    async def run(self, steps: int) -> int:
        for _ in range(steps):
            await workflow.execute_local_activity(
                noop, "x", start_to_close_timeout=timedelta(seconds=5)
            )
        return steps


async def measure(runs: int, steps: int) -> dict[int, list[float]]:
    server = TemporalDevServer().start()
    try:
        client = await Client.connect(server.address)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        times: dict[int, list[float]] = {0: [], steps: []}
        with ThreadPoolExecutor(8) as executor:
            async with Worker(
                client,
                task_queue=queue,
                workflows=[LocalSteps],
                activities=[noop],
                activity_executor=executor,
            ):
                for n in range(runs + 3):  # the first 3 of each warm up
                    for count in (0, steps) if n % 2 else (steps, 0):
                        started = time.perf_counter()
                        await client.execute_workflow(
                            LocalSteps.run,
                            count,
                            id=f"bench-{uuid.uuid4()}",
                            task_queue=queue,
                            request_eager_start=True,
                        )
                        if n >= 3:
                            times[count].append((time.perf_counter() - started) * 1000)
        return times
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=7)
    args = parser.parse_args()
    times = asyncio.run(measure(args.runs, args.steps))
    none, some = statistics.median(times[0]), statistics.median(times[args.steps])
    print(f"workflow run, start to result, {args.runs} runs each, interleaved (median ms)")
    print(f"{'no local activity (baseline)':<40}{none:>10.1f}")
    print(f"{f'{args.steps} no-op local activities':<40}{some:>10.1f}")
    print(
        f"ratio {args.steps} / baseline: {some / none:.2f}; "
        f"per local activity: {(some - none) / args.steps:.1f} ms"
    )


if __name__ == "__main__":
    main()
