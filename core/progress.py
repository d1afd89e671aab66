"""Progress of long management commands: a bar on a terminal, plain lines anywhere else.

A person at a terminal wants one line that fills up; a log file, a CI run or a pipe wants
one complete line per step it can grep and timestamp, with no carriage returns or escape
codes. ``progress()`` picks by asking the output stream whether it is a terminal, so a
command writes the same code for both::

    with progress(self.stdout, total=len(items), description="schedules") as steps:
        for item in items:
            ...
            steps.advance(f"{item}: done")

The bar is tqdm's (maintained, no dependencies of its own). Any command that may run
for more than a few seconds (template sync, schedule sync, fleet-wide runs) uses this.
"""

import contextlib
from collections.abc import Iterator
from typing import TextIO

from tqdm import tqdm

# tqdm's default with the step's description after the counts ("{postfix}").
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}]{postfix}"


def raw_stream(stream) -> TextIO:
    """The stream under a management command's ``self.stdout``: Django's ``OutputWrapper``
    ends every write with a newline, which would turn each redraw of a bar into a new line."""
    return getattr(stream, "_out", stream)


def is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Steps:
    """What a command reports through: ``advance()`` after each unit of work, ``note()``
    for a line that is not a step (a warning, a summary) without breaking the bar."""

    def __init__(self, stream: TextIO, *, total: int, description: str, bar: bool):
        self.stream, self.total, self.description = stream, total, description
        self.done = 0
        self._last_what = ""  # advance_to's last note, so an unchanged poll writes nothing
        self._bar = None
        if bar:
            self._bar = tqdm(
                total=total,
                desc=description,
                file=stream,
                unit="step",
                dynamic_ncols=True,
                leave=True,
                bar_format=BAR_FORMAT,
            )

    def advance(self, what: str = "") -> None:
        """One unit done; ``what`` says which (shown beside the bar, or as the line)."""
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(what, refresh=False)
            self._bar.update(1)
            return
        self._write_line(what)

    def _write_line(self, what: str) -> None:
        width = len(str(self.total))
        line = f"{self.description}: [{self.done:>{width}}/{self.total}]"
        self.stream.write(f"{line} {what}\n" if what else f"{line}\n")
        self.stream.flush()

    def advance_to(self, done: int, what: str = "", *, total: int | None = None) -> None:
        """For work counted elsewhere (a fleet run's row): ``done`` units so far of
        ``total`` (when it became known or changed). A plain line only when something
        changed, so a poll every half second does not flood a log."""
        changed = done != self.done or (total is not None and total != self.total)
        if total is not None and total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
        if self._bar is not None:
            self._bar.set_postfix_str(what, refresh=False)
            self._bar.update(done - self.done)
            self.done = done
            return
        if changed or what != self._last_what:
            self.done = done
            self._write_line(what)
        self._last_what = what

    def note(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            self.stream.write(f"{message}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def progress(stream, *, total: int, description: str) -> Iterator[Steps]:
    """Report ``total`` steps of ``description`` on ``stream`` (a command's ``self.stdout``
    or any text stream): a progress bar when it is a terminal, one plain line per step
    (``schedules: [1/3] ...``) otherwise. The bar is closed however the block ends."""
    if total < 0:
        raise ValueError(f"total must be at least 0, not {total}")
    out = raw_stream(stream)
    steps = Steps(out, total=total, description=description, bar=is_terminal(out))
    try:
        yield steps
    finally:
        steps.close()
