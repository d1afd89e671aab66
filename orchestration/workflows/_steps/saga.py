"""A saga as data: the steps of a tenant's lifecycle run, each with its undo and options,
declared once and walked by ``Saga.run``.

A ``Step`` names its forward activity, the activity options, and (optionally) the undo that
is registered *before* the step runs, so that a step that half-happened is undone too.
``Saga.run`` executes the steps in order; when one fails, or the run is cancelled, it runs
the registered undos in reverse, shielded from cancellation, then the saga's ``on_failure``
activity with the reason, as an explicit final act. Adding a step is one ``Step`` entry plus
its activity (and re-recorded histories).

A step's name is its activity's name less the ``tenant_`` prefix
(``orchestration.activities.step_name``); the activities record their progress on the tenant
under that name, so the API and the admin read it from the database.

The commands issued are exactly those the hand-written workflows issued before this module
existed (patches included), so every recorded history still replays.
"""

import asyncio
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
    # The step runs only where ``workflow.patched(patch)`` is true (runs started before it
    # replay without it); the check is made when the run reaches the step, as before.
    patch: str | None = None
    # A short database step: where the run's ``local_steps`` is on, it runs as a local
    # activity (in the worker that runs the workflow, no task-queue round trip; a killed
    # worker is noticed by the workflow task's timeout and the step runs again, idempotent).
    local: bool = False
    # (activity, options): a cheap way to the same result, tried first as a local activity
    # where the run's ``first_tries`` is on. A truthy result is the step's; a falsy one
    # means "not this way" and the step's own activity runs. The step's undo covers both.
    first_try: tuple[Callable, dict] | None = None

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
    # The activity that runs several local steps as one (``tenant_run_steps``: the subject
    # and the steps' activity names): where the run's ``grouped_steps`` is on, consecutive
    # local steps (a step with a ``first_try``: its first try) run through it, their undos
    # registered before.
    run_steps: Callable | None = None

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    @property
    def activities(self) -> list[Callable]:
        """Every activity the saga can call (steps, undos, the final act), for the workers."""
        found = [step.activity for step in self.steps]
        found += [step.first_try[0] for step in self.steps if step.first_try is not None]
        found += [step.undo[0] for step in self.steps if step.undo is not None]
        if self.on_failure is not None:
            found.append(self.on_failure[0])
        if self.run_steps is not None:
            found.append(self.run_steps)
        return list(dict.fromkeys(found))


@dataclass
class Progress:
    """What the run has done, for its ``progress`` query (the API and the admin read the
    same facts from the tenant row, written by the activities)."""

    steps_done: list[str] = field(default_factory=list)
    current_step: str | None = None
    total: int = 0
    state: str = "running"  # running | compensating | completed | failed
    error: str = ""


class SagaRun:
    """One walk of a ``Saga`` for one subject (a tenant id), inside a workflow."""

    # A run that was asked to cancel ends cancelled once it has undone what it did, also
    # when the cancel reached its running step as an activity failure; runs started before
    # this patch ended failed in that case.
    CANCELLED_ENDS_CANCELLED = "cancelled-ends-cancelled"

    def __init__(self, saga: Saga, *, wait_for_steps: bool = False) -> None:
        self.saga = saga
        # How long each forward step keeps retrying (the run's input says; see common.py).
        self.retry_window = DEFAULT_RETRY_WINDOW
        # With WAIT_CANCELLATION_COMPLETED a cancel lets the running step finish before the
        # undos run (an undo never runs beside the step it undoes).
        self.wait_for_steps = wait_for_steps
        # Steps declared ``local`` run as local activities (set from a patch by the
        # workflow: runs recorded before it replay their steps as activities).
        self.local_steps = False
        # Steps with a ``first_try`` try it first (also set from a patch by the workflow).
        self.first_tries = False
        # Consecutive local steps run as one local activity, ``saga.run_steps`` (also set
        # from a patch by the workflow).
        self.grouped_steps = False
        self.progress = Progress(total=len(saga.steps))
        self.results: dict[str, Any] = {}

    async def run(self, subject: str) -> Progress:
        # The undos registered so far, by the index of their step.
        undo: dict[int, tuple[Callable, dict]] = {}
        try:
            final = len(self.saga.steps) - 1
            pending = list(enumerate(self.saga.steps))
            while pending:
                group = self._next_group(pending)
                undo |= {index: step.undo for index, step in group if step.undo is not None}
                if len(group) == 1:
                    await self._step(group[0][1], subject, last=group[0][0] == final)
                elif group:
                    done = await self._group(
                        [s for _, s in group], subject, last=group[-1][0] == final
                    )
                    if done < len(group):  # a first try found nothing: that step the long way
                        index, step = group[done]
                        for later, _ in group[done + 1 :]:  # registered again when they run
                            undo.pop(later, None)
                        await self._step(step, subject, last=index == final, tried=True)
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
            undoing = asyncio.ensure_future(self._compensate(list(undo.values()), subject, reason))
            while not undoing.done():
                try:
                    await asyncio.shield(undoing)
                except asyncio.CancelledError:
                    continue
            undoing.result()
            self.progress.state, self.progress.current_step = "failed", None
            if isinstance(err, asyncio.CancelledError):
                raise
            if cancel_requested and workflow.patched(self.CANCELLED_ENDS_CANCELLED):
                raise asyncio.CancelledError() from err
            raise ApplicationError(
                self.saga.failure_message.format(subject=subject, reason=reason),
                type=self.saga.failure_type,
                non_retryable=True,
            ) from err
        self.progress.state, self.progress.current_step = "completed", None
        return self.progress

    def _taken(self, step: Step) -> bool:
        """Whether the run takes ``step`` (runs started before its patch do not)."""
        if step.patch is not None and not workflow.patched(step.patch):
            self.progress.total -= 1
            return False
        return True

    def _next_group(self, pending: list[tuple[int, Step]]) -> list[tuple[int, Step]]:
        """The next steps the run takes, taken off ``pending``: consecutive local steps (and
        first tries) together where the run groups them, else one step."""
        group: list[tuple[int, Step]] = []
        while pending:
            if group and not (self._groupable(group[-1][1]) and self._groupable(pending[0][1])):
                break
            index, step = pending.pop(0)
            if self._taken(step):
                group.append((index, step))
        return group

    def _groupable(self, step: Step) -> bool:
        if not (self.grouped_steps and self.saga.run_steps is not None and self.local_steps):
            return False
        if step.first_try is not None:
            return self.first_tries  # the first try joins the group, the long way does not
        return step.local

    def _as_grouped(self, step: Step) -> tuple[Callable, dict]:
        """What a group runs for ``step``: its first try if it has one, else the step."""
        return step.first_try if step.first_try is not None else (step.activity, step.options)

    async def _group(self, group: list[Step], subject: str, *, last: bool) -> int:
        """Steps run as one local activity; returns how many were done (fewer than the group
        when a first try found nothing). A failure names the step that failed."""
        self.progress.current_step = group[0].name
        runs = [self._as_grouped(s) for s in group]
        longest = max((o for _, o in runs), key=lambda o: o["start_to_close_timeout"])
        names = [_name(activity) for activity, _ in runs]
        try:
            results = await self._activity(self.saga.run_steps, longest, subject, names, local=True)
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
        for step, result in zip(group, results, strict=False):
            if step.first_try is not None and not result:
                return group.index(step)
            self.results[step.name] = result
            self.progress.steps_done.append(step.name)
        self._stop_if_cancelled(last=last)
        return len(group)

    async def _step(self, step: Step, subject: str, *, last: bool, tried: bool = False) -> None:
        """``tried``: its first try ran (in a group) and found nothing."""
        self.progress.current_step = step.name
        result = None
        if self.first_tries and step.first_try is not None and not tried:
            result = await self._activity(*step.first_try, subject, local=True)
        tried_first = self.first_tries and step.first_try is not None
        cancelled = workflow.cancellation_reason() is not None
        if tried_first and not result and self.wait_for_steps and cancelled:
            raise asyncio.CancelledError()  # cancelled meanwhile: no need for the long way
        if not result:
            result = await self._activity(
                step.activity, step.options, subject, local=self.local_steps and step.local
            )
        self.results[step.name] = result
        self.progress.steps_done.append(step.name)
        self._stop_if_cancelled(last=last)

    def _stop_if_cancelled(self, *, last: bool) -> None:
        if self.wait_for_steps and workflow.cancellation_reason() is not None and not last:
            # Cancelled while this step ran; it was let finish. Stop here and undo (unless
            # it was the last step: the subject is done, there is nothing left to stop).
            raise asyncio.CancelledError()

    async def _activity(self, activity: Callable, options: dict, subject: str, *more, local: bool):
        cancellation = workflow.ActivityCancellationType.TRY_CANCEL
        if self.wait_for_steps:
            cancellation = workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        options = within(options, self.retry_window)
        if local:
            options.pop("heartbeat_timeout", None)  # local activities do not heartbeat
            run = workflow.execute_local_activity
        else:
            run = workflow.execute_activity
        arguments = {"args": [subject, *more]} if more else {"arg": subject}
        running = asyncio.ensure_future(
            run(activity, **arguments, cancellation_type=cancellation, **options)
        )
        if self.wait_for_steps and local:
            # A local activity is cancelled with its run whatever its cancellation type: a
            # cancel would abandon a short database step that may already have committed
            # (mark active, say). Shielded, it finishes, and the check after the step decides.
            while not running.done():
                try:
                    await asyncio.shield(running)
                except asyncio.CancelledError:
                    continue
        return await running

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
