"""A saga as data: the steps of a tenant's lifecycle run, each with its undo and options,
declared once and walked by ``SagaRun``.

A ``Step`` names its forward activity, the activity options, and (optionally) the undo that
is registered *before* the step runs, so that a step that half-happened is undone too.
``SagaRun.run`` takes the steps in order; when one fails, or the run is cancelled, it runs
the registered undos in reverse, shielded from cancellation, then the saga's ``on_failure``
activity with the reason, as an explicit final act. Adding a step is one ``Step`` entry plus
its activity (and re-recorded histories).

How a run takes its steps:

* Consecutive ``local`` steps, and a step's ``first_try``, run as one local activity, the
  saga's ``runner``, made from the declared steps' bodies (``activities.tenants
  .steps_runner``): one dispatch, no task-queue round trip. Their undos are registered
  before it. A step's activity may live in any module: it is declared with ``tenant_step``,
  which gives it the body the runner runs.
* A first try that finds nothing ends its group: the step then runs its own activity on the
  task queue, and the steps after it are the next group. Any other step is an activity on
  the task queue, alone.
* A step that ``may_end_run`` and returns a reason (the tenant is being deleted) ends the run
  there, completed and ``superseded``, with nothing done to undo.
* A cancel lets the running step finish (``WAIT_CANCELLATION_COMPLETED``; a local activity is
  shielded), then the run stops, undoes, and ends cancelled; a cancel during the last step
  changes nothing (the subject is done, nothing is left to stop).

A step's name is its activity's name less the ``tenant_`` prefix
(``orchestration.activities.step_name``); the steps record their progress on the tenant under
that name, so the API and the admin read it from the database.
"""

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from orchestration.activities import step_name
from orchestration.workflows._steps.common import DEFAULT_RETRY_WINDOW, within


def _name(activity: Callable) -> str:
    return activity.__name__  # the activity's registered name (activities keep their own)


@dataclass(frozen=True)
class Step:
    activity: Callable
    options: dict
    # (undo activity, its options): registered before the step runs.
    undo: tuple[Callable, dict] | None = None
    # A short database step, run by the saga's runner with its neighbours (in the worker that
    # runs the workflow, no task-queue round trip; a killed worker is noticed by the workflow
    # task's timeout and the group runs again, each step idempotent).
    local: bool = False
    # (activity, options): a cheap way to the same result, tried first in the runner's group.
    # A truthy result is the step's; a falsy one means "not this way" and the step's own
    # activity runs on the task queue. The step's undo covers both.
    first_try: tuple[Callable, dict] | None = None
    # A truthy result (why: the tenant is being deleted) ends the run, completed, superseded.
    may_end_run: bool = False

    @property
    def name(self) -> str:
        return step_name(_name(self.activity))


@dataclass(frozen=True)
class Saga:
    steps: Sequence[Step]
    # The final act of a failed run, after the undos: called with the subject and the reason.
    on_failure: tuple[Callable, dict] | None = None
    # The run's own failure (non-retryable ApplicationError) once the undos are done.
    failure_type: str = "SagaFailed"
    failure_message: str = "{subject} failed at {reason}"
    # Makes the activity that runs grouped steps as one, given their bodies by activity name
    # (``activities.tenants.steps_runner``); needed by a saga with local steps or first tries.
    group_runner: Callable | None = None
    # That activity, made from this declaration (``__post_init__``).
    runner: Callable | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        """Makes the runner from the steps declared to run in it, and refuses a declaration
        it cannot run, naming the step."""
        bodies = {}
        for step in self.steps:
            if step.may_end_run and not step.local:
                raise TypeError(f"step {step.name}: only a local step may end the run")
            if step.first_try is not None:
                body = _body_of(step, step.first_try[0])
                bodies[_name(step.first_try[0])] = dataclasses.replace(body, first_try_of=step.name)
            if step.local:
                body = _body_of(step, step.activity)
                bodies[_name(step.activity)] = dataclasses.replace(
                    body, may_end_run=step.may_end_run
                )
        if bodies and self.group_runner is None:
            raise TypeError(f"saga of {self.step_names}: local steps and first tries need a runner")
        if bodies:
            object.__setattr__(self, "runner", self.group_runner(bodies))

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    @property
    def activities(self) -> list[Callable]:
        """Every activity a run schedules (steps on the task queue, undos, the final act, the
        runner), for the workers."""
        found = [step.activity for step in self.steps if not step.local]
        found += [step.undo[0] for step in self.steps if step.undo is not None]
        if self.on_failure is not None:
            found.append(self.on_failure[0])
        if self.runner is not None:
            found.append(self.runner)
        return list(dict.fromkeys(found))


def _body_of(step: Step, activity: Callable):
    body = getattr(activity, "step_body", None)
    if body is None:
        raise TypeError(
            f"step {step.name}: {_name(activity)} runs in the saga's runner, but it is not "
            "declared with tenant_step (orchestration.activities.tenants), which gives it the "
            "body the runner runs"
        )
    return body


@dataclass
class Progress:
    """What the run has done, for its ``progress`` query (the API and the admin read the
    same facts from the tenant row, written by the activities)."""

    steps_done: list[str] = field(default_factory=list)
    current_step: str | None = None
    total: int = 0
    state: str = "running"  # running | compensating | completed | superseded | failed
    error: str = ""


class SagaRun:
    """One walk of a ``Saga`` for one subject (a tenant id), inside a workflow."""

    def __init__(self, saga: Saga) -> None:
        self.saga = saga
        self.progress = Progress(total=len(saga.steps))
        self.results: dict[str, Any] = {}
        # How long each forward step keeps retrying (the run's input says; see common.py).
        self.retry_window = DEFAULT_RETRY_WINDOW

    async def run(self, subject: str, *, retry_window: int = DEFAULT_RETRY_WINDOW) -> Progress:
        self.retry_window = retry_window
        # The undos registered so far, by the index of their step.
        undo: dict[int, tuple[Callable, dict]] = {}
        try:
            final = len(self.saga.steps) - 1
            pending = list(enumerate(self.saga.steps))
            while pending:
                group = _next_group(pending)
                undo |= {index: step.undo for index, step in group if step.undo is not None}
                if not _grouped(group[0][1]):
                    await self._step(group[0][1], subject, last=group[0][0] == final)
                    continue
                done = await self._group([s for _, s in group], subject, last=group[-1][0] == final)
                if done == len(group):
                    continue
                index, step = group[done]  # it ended the group: the steps after it wait
                for later, _ in group[done + 1 :]:  # registered again when they run
                    undo.pop(later, None)
                if step.may_end_run:  # superseded: nothing done, nothing to undo
                    undo.pop(index, None)
                    self.progress.state, self.progress.current_step = "superseded", None
                    return self.progress
                # A first try found nothing: that step the long way, unless cancelled meanwhile.
                self._stop_if_cancelled(last=False)
                await self._step(step, subject, last=index == final)
                pending[0:0] = group[done + 1 :]
        except (Exception, asyncio.CancelledError) as err:
            if isinstance(err, asyncio.CancelledError) and workflow.cancellation_reason() is None:
                raise  # not a cancel request: the worker is evicting the run; nothing to undo
            if self.saga.on_failure is None and not undo:
                raise
            # A cancel that had been asked for when the step failed is why it failed.
            cancel_requested = workflow.cancellation_reason() is not None
            reason = f"{self.progress.current_step}: {describe(err)}"
            self.progress.state, self.progress.error = "compensating", reason
            # Shielded: a cancelled run still undoes what it did, however often it is
            # cancelled meanwhile (undos may be retrying through an outage).
            await to_the_end(self._compensate(list(undo.values()), subject, reason))
            self.progress.state, self.progress.current_step = "failed", None
            if isinstance(err, asyncio.CancelledError):
                raise
            if cancel_requested:  # a cancelled run ends cancelled, once it has undone
                raise asyncio.CancelledError() from err
            raise ApplicationError(
                self.saga.failure_message.format(subject=subject, reason=reason),
                type=self.saga.failure_type,
                non_retryable=True,
            ) from err
        self.progress.state, self.progress.current_step = "completed", None
        return self.progress

    async def _group(self, group: list[Step], subject: str, *, last: bool) -> int:
        """Steps run as one local activity, the saga's runner; returns how many were done
        (fewer than the group when one ended it: a first try found nothing, or the run is
        superseded). A failure names the step that failed."""
        self.progress.current_step = group[0].name
        runs = [s.first_try if s.first_try is not None else (s.activity, s.options) for s in group]
        longest = max((o for _, o in runs), key=lambda o: o["start_to_close_timeout"])
        names = [_name(activity) for activity, _ in runs]
        try:
            results = await self._activity(self.saga.runner, longest, subject, names, local=True)
        except Exception as err:
            # The failing step's name is in the details of the activity's failure (a local
            # activity's failure is raised as itself, a task-queue one inside ActivityError).
            failed = err
            while failed is not None and not (
                isinstance(failed, ApplicationError) and failed.details
            ):
                failed = getattr(failed, "cause", None)
            if failed is not None:
                self.progress.current_step = str(failed.details[0])
            raise
        for done, (step, result) in enumerate(zip(group, results, strict=False)):
            if (step.first_try is not None and not result) or (step.may_end_run and result):
                return done
            self.results[step.name] = result
            self.progress.steps_done.append(step.name)
        self._stop_if_cancelled(last=last)
        return len(group)

    async def _step(self, step: Step, subject: str, *, last: bool) -> None:
        """A step on the task queue, alone."""
        self.progress.current_step = step.name
        result = await self._activity(step.activity, step.options, subject, local=False)
        self.results[step.name] = result
        self.progress.steps_done.append(step.name)
        self._stop_if_cancelled(last=last)

    def _stop_if_cancelled(self, *, last: bool) -> None:
        if workflow.cancellation_reason() is not None and not last:
            # Cancelled while this step ran; it was let finish. Stop here and undo (unless
            # it was the last step: the subject is done, there is nothing left to stop).
            raise asyncio.CancelledError()

    async def _activity(self, activity: Callable, options: dict, subject: str, *more, local: bool):
        options = within(options, self.retry_window)
        if local:
            options.pop("heartbeat_timeout", None)  # local activities do not heartbeat
            run = workflow.execute_local_activity
        else:
            run = workflow.execute_activity
        arguments = {"args": [subject, *more]} if more else {"arg": subject}
        running = asyncio.ensure_future(
            run(
                activity,
                **arguments,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                **options,
            )
        )
        # A local activity is cancelled with its run whatever its cancellation type: a
        # cancel would abandon a short database step that may already have committed (mark
        # active, say). Shielded, it finishes, and the check after the step decides.
        return await (to_the_end(running) if local else running)

    async def _compensate(self, undo: list, subject: str, reason: str) -> None:
        """Run the undos in reverse, then ``on_failure``. Undos retry until they succeed; one
        that meets an error no retry can fix is logged and named in the reason the final act
        records."""
        failed: list[str] = []
        for activity, options in reversed(undo):
            try:
                await workflow.execute_activity(activity, subject, **options)
            except ActivityError as exc:
                # Keep undoing the rest; each undo is idempotent and can be re-run by hand.
                workflow.logger.error("compensation %s failed: %s", _name(activity), exc)
                failed.append(f"{_name(activity)}: {describe(exc)}")
        if self.saga.on_failure is not None:
            activity, options = self.saga.on_failure
            note = f" (undo failed: {', '.join(failed)})" if failed else ""
            await _final_act(activity, subject, reason + note, options)


async def to_the_end(awaitable):
    """``awaitable``'s result, however often the run is cancelled meanwhile: it is shielded
    and awaited again after each cancel, until it is done."""
    running = asyncio.ensure_future(awaitable)
    while not running.done():
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            continue
    return running.result()


def _grouped(step: Step) -> bool:
    """Whether the saga's runner takes ``step`` (its first try, when it has one)."""
    return step.local or step.first_try is not None


def _next_group(pending: list[tuple[int, Step]]) -> list[tuple[int, Step]]:
    """The next steps the run takes, taken off ``pending``: consecutive grouped steps, else
    one step."""
    group = [pending.pop(0)]
    while _grouped(group[0][1]) and pending and _grouped(pending[0][1]):
        group.append(pending.pop(0))
    return group


async def _final_act(activity: Callable, subject: str, reason: str, options: dict) -> None:
    try:
        await workflow.execute_activity(activity, args=[subject, reason], **options)
    except ActivityError as exc:
        workflow.logger.error("%s failed: %s", _name(activity), exc)


def describe(err: BaseException) -> str:
    """The innermost message of an activity failure, for people to read."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    if isinstance(err, asyncio.CancelledError):
        return "cancelled"
    return getattr(err, "message", None) or str(err) or type(err).__name__
