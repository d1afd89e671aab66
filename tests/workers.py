"""Temporal in tests: the project's workers and relay in threads, activity stand-ins
registered under the real names, and questions to the server."""

import asyncio
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from orchestration import client as temporal_client
from orchestration.activities.tenants import steps_runner
from orchestration.relay import OutboxRelay
from tenants.models import Tenant
from tests.kit import run_async, wait_until, wait_until_async

SHARDS = 4  # tenant queues of a worker process started by the ``start_worker`` fixture


def relay_for(address: str, **kwargs) -> OutboxRelay:
    """A relay that connects through the project's client (settings: namespace, TLS, API key,
    data converter), to the test server at ``address``."""
    return OutboxRelay(connect=lambda: temporal_client.connect(address=address), **kwargs)


# --- asking the server ----------------------------------------------------------------------


async def _runs(address: str, workflow_id: str) -> list:
    client = await Client.connect(address)
    return [wf async for wf in client.list_workflows(f'WorkflowId = "{workflow_id}"')]


def runs_of(address: str, workflow_id: str, *, timeout: float = 10) -> list:
    """Every run of ``workflow_id``, once visibility lists one (it lags a little)."""
    return wait_until(
        lambda: run_async(_runs(address, workflow_id)),
        timeout=timeout,
        what=f"a run of {workflow_id} to be listed",
    )


async def _runs_on(address: str, task_queue: str) -> list:
    client = await Client.connect(address)
    return [wf async for wf in client.list_workflows(f'TaskQueue = "{task_queue}"')]


def runs_on_queue(address: str, task_queue: str, *, count: int, timeout: float = 30) -> list:
    """Every run on ``task_queue``, once visibility lists at least ``count`` of them."""

    def listed():
        runs = run_async(_runs_on(address, task_queue))
        return runs if len(runs) >= count else None

    return wait_until(listed, timeout=timeout, what=f"{count} runs on {task_queue} to be listed")


async def triggered_run_result(client: Client, schedule_id: str):
    """Trigger the schedule ``schedule_id`` now; the result of the run it starts."""
    handle = client.get_schedule_handle(schedule_id)
    await handle.trigger()

    async def started_run():
        actions = (await handle.describe()).info.recent_actions
        return actions[-1].action if actions else None

    run = await wait_until_async(
        started_run, timeout=30, interval=0.1, what="the schedule to start a run"
    )
    return await client.get_workflow_handle(
        run.workflow_id, run_id=run.first_execution_run_id
    ).result()


async def _describe(address: str, workflow_id: str):
    client = await Client.connect(address)
    return await client.get_workflow_handle(workflow_id).describe()


def describe(address: str, workflow_id: str):
    return run_async(_describe(address, workflow_id))


def workflow_exists(address: str, workflow_id: str) -> bool:
    """Whether the server has any run of ``workflow_id`` (read from the run itself, not
    from visibility, so a "no" needs no waiting)."""
    try:
        describe(address, workflow_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def workflow_result(address: str, workflow_id: str):
    client = await Client.connect(address)
    return await client.get_workflow_handle(workflow_id).result()


async def workflow_history_json(address: str, workflow_id: str) -> str:
    client = await Client.connect(address)
    return (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()


async def _event_types(handle: WorkflowHandle) -> list[str]:
    history = await handle.fetch_history()
    return [EventType.Name(event.event_type) for event in history.events]


async def _event_types_of(address: str, workflow_id: str) -> list[str]:
    client = await Client.connect(address)
    return await _event_types(client.get_workflow_handle(workflow_id))


def event_types(address: str, workflow_id: str) -> list[str]:
    """The run's history, as event type names."""
    return run_async(_event_types_of(address, workflow_id))


async def events_once_cancel_reached_the_step(handle: WorkflowHandle) -> list[str] | None:
    """The run's history events (type names) after its cancel request, once it acted on the
    request by asking its running activity to stop (as it does with a step it lets
    finish); None before that."""
    types = await _event_types(handle)
    requested = "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED"
    after = types[types.index(requested) + 1 :] if requested in types else []
    return after if "EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED" in after else None


def settled(tenant_id, *statuses, timeout: float = 60) -> Tenant:
    """The tenant, once its status is one of ``statuses``."""

    def check():
        tenant = Tenant.objects.get(pk=tenant_id)
        return tenant if tenant.status in statuses else None

    return wait_until(check, timeout=timeout, what=f"tenant to be {'/'.join(statuses)}")


def finished(result, timeout: float = 60):
    """The ``django.tasks`` ``result``, refreshed until it is finished."""

    def check():
        result.refresh()
        return result.is_finished

    wait_until(check, timeout=timeout, what=f"task {result.id} to finish")
    return result


# --- activity stand-ins, registered under the real activity's name --------------------------


def stand_in(real, body=None):
    """Decorates a stand-in for the activity ``real``: registered under its name. For a
    lifecycle step, ``body(real's body)`` is what the stand-in does where a run takes the
    step inside its saga's runner (without the recording of progress around it)."""

    def decorate(fn):
        stand = activity.defn(name=real.__name__)(fn)
        if body is not None and hasattr(real, "step_body"):
            stand.step_body = dataclasses.replace(real.step_body, run=body(real.step_body.run))
        return stand

    return decorate


def _failing(name: str, first=None):
    def body(*args):
        if first is not None:
            first(*args)
        raise ApplicationError(f"injected failure in {name}", non_retryable=True)

    return body


def recording(real, results: list):
    """Does the real work and keeps its result."""

    def keeping(work):
        def body(*args):
            results.append(work(*args))
            return results[-1]

        return body

    return stand_in(real, keeping)(keeping(real))


def recorded_creations() -> tuple[dict, list[str], list[str]]:
    """Worker replacements recording what provisioning's schema step returned: its first try
    (pool or template, a local activity) and its long way (on the task queue, by
    migrations). Returns ``(replace, first tries, long ways)``."""
    from orchestration.activities import tenants as steps

    tried: list[str] = []
    created: list[str] = []
    replace = {
        steps.tenant_claim_pooled_schema.__name__: recording(
            steps.tenant_claim_pooled_schema, tried
        ),
        steps.tenant_create_schema.__name__: recording(steps.tenant_create_schema, created),
    }
    return replace, tried, created


def no_first_try() -> dict:
    """Worker replacements: the schema step's first try (pool or template) finds nothing, so
    the step goes the long way, on the task queue, by migrations (as where no template can
    be stored)."""
    from orchestration.activities import tenants as steps

    def nothing(*args) -> str:
        return ""

    quick = steps.tenant_claim_pooled_schema
    return {quick.__name__: stand_in(quick, lambda work: nothing)(nothing)}


def fail_after(real):
    """Does the real work, then fails for good — the worst case for a saga: the step
    half-happened."""
    return stand_in(real, lambda work: _failing(real.__name__, work))(_failing(real.__name__, real))


def fail_instead(real):
    """Fails for good without doing anything."""
    return stand_in(real, lambda work: _failing(real.__name__))(_failing(real.__name__))


# --- the project's workers, in this process --------------------------------------------------


class BackgroundWorker:
    """The project's workers for ``kinds`` plus the outbox relay, in threads of this process
    (one event loop, as in ``run_temporal_worker``).

    ``replace`` swaps activities by name (stand-ins registered under the real names), for
    injecting failures without any hook in production code. Activities keep their
    function's name, so a stand-in for ``steps.tenant_create_schema`` is keyed
    ``steps.tenant_create_schema.__name__``; a name no hosted activity has is refused.
    """

    def __init__(
        self,
        address: str,
        *,
        replace: dict | None = None,
        kinds=("tenant",),
        max_concurrent_activities: int | None = None,
        runs_per_tenant: int | None = None,
    ):
        self.address = address
        # Fewer activity slots than the work waiting: the order the server hands tasks out
        # in shows (fairness tests).
        self.worker_options = (
            {"max_concurrent_activities": max_concurrent_activities}
            if max_concurrent_activities
            else {}
        )
        self.kinds = kinds
        self.swaps = replace or {}
        self.relay = relay_for(address, poll_interval=0.2, runs_per_tenant=runs_per_tenant)
        self._threads: list[threading.Thread] = []
        self._loop = None
        self._stop = None

    def _plan(self) -> list[tuple[str, list, list]]:
        from orchestration.registry import hosted
        from orchestration.routing import QueueKind, queue_name, tenant_queues

        prefix, plan, names = settings.TEMPORAL_QUEUE_PREFIX, [], set()
        for kind in map(QueueKind, self.kinds):
            registered = hosted(kind)
            names |= {a.__name__ for a in registered.activities}
            activities = [self._swapped(a, names) for a in registered.activities]
            if kind == QueueKind.TENANT:
                queues = tenant_queues(prefix=prefix, shards=settings.TEMPORAL_QUEUE_SHARDS)
            else:
                queues = [queue_name(prefix=prefix, kind=kind)]
            plan += [(q, list(registered.workflows), activities) for q in queues]
        if unknown := set(self.swaps) - names:
            raise ValueError(f"no hosted activity or step is named {sorted(unknown)}")
        return plan

    def _swapped(self, real, names: set):
        """``real``, or its stand-in; a saga's runner with the stand-ins of its steps (their
        ``step_body``, or the body of a stand-in declared with ``tenant_step``)."""
        bodies = getattr(real, "step_bodies", None)
        if bodies is None:
            return self.swaps.get(real.__name__, real)
        names |= set(bodies)
        swapped = dict(bodies)
        for name, stand in self.swaps.items():
            if name in bodies:
                body = getattr(stand, "step_body", None)
                if body is None:
                    raise ValueError(f"the stand-in for step {name} has no step_body")
                kept = bodies[name]  # its part in the saga: a first try, may end the run
                swapped[name] = dataclasses.replace(
                    kept, run=body.run, commits_as_it_goes=body.commits_as_it_goes
                )
        return steps_runner(swapped, name=real.__name__)

    def __enter__(self):
        started = threading.Event()
        plan = self._plan()
        self._threads = [
            threading.Thread(target=self._serve, args=(plan, started), daemon=True),
            threading.Thread(target=self.relay.run, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if not started.wait(30):
            self.__exit__(None, None, None)
            raise AssertionError("worker did not start")
        return self

    def _serve(self, plan, started):
        async def main():
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            # The project's client: its interceptors (tracing, when on) reach the workers.
            client = await temporal_client.connect(address=self.address)
            with ThreadPoolExecutor(8) as pool:
                workers = [
                    Worker(
                        client,
                        task_queue=queue,
                        workflows=workflows,
                        activities=activities,
                        activity_executor=pool,
                        **self.worker_options,
                    )
                    for queue, workflows, activities in plan
                ]
                runs = [asyncio.create_task(w.run()) for w in workers]
                started.set()
                await self._stop.wait()
                await asyncio.gather(*(w.shutdown() for w in workers))
                await asyncio.gather(*runs, return_exceptions=True)

        asyncio.run(main())

    def __exit__(self, *exc):
        self.relay.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        for thread in self._threads:
            thread.join(30)
