"""Progress of a long command: a bar on a terminal, plain lines otherwise (logs, CI)."""

import contextlib
import time
from collections.abc import Iterator


class Progress:
    def __init__(self, stdout, *, total: int | None, label: str, every: float):
        self.stdout, self.total, self.label, self.every = stdout, total, label, every
        self.tty = bool(getattr(stdout, "isatty", lambda: False)())
        self._last_line, self._last_time = None, 0.0

    def update(self, *, done: int, total: int | None = None, note: str = "") -> None:
        self.total = total if total is not None else self.total
        if self.tty:
            self.stdout.write(f"\r{self._bar(done)} {note}\x1b[K", ending="")
            self.stdout.flush()
            return
        line = f"{self.label}: {done}/{self.total or '?'} {note}".rstrip()
        now = time.monotonic()
        if line != self._last_line and (now - self._last_time >= self.every or note != self._note):
            self.stdout.write(line)
            self._last_line, self._last_time = line, now
        self._note = note

    _note = ""

    def _bar(self, done: int, width: int = 30) -> str:
        if not self.total:
            return f"{self.label}: {done}"
        filled = min(width, width * done // self.total)
        return f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}"

    def close(self) -> None:
        if self.tty:
            self.stdout.write("")


@contextlib.contextmanager
def progress(*, total: int | None, stdout, label: str, every: float = 5.0) -> Iterator[Progress]:
    """A ``Progress`` for ``stdout`` (a command's ``self.stdout``): on a terminal one bar
    redrawn in place; otherwise a line when the count changes, at most every ``every``
    seconds (and on every change of the note)."""
    bar = Progress(stdout, total=total, label=label, every=every)
    try:
        yield bar
    finally:
        bar.close()
