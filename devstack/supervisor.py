"""Child processes of `make dev` that come back when they crash.

A supervised child that exits is restarted after a delay that doubles with each exit in a
row (1 s, 2 s, 4 s… up to 30 s) and starts again from 1 s once a run lasted long enough to
count as healthy, so a crash loop neither spins the CPU nor floods the terminal. Every
child runs in a session of its own; stopping one ends its whole process group, which takes
runserver's autoreloader child and anything else it started with it.
"""

import subprocess
import time
from collections.abc import Callable

from devstack.localservices import stop_process_group


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``; ``reset()`` after a success."""

    def __init__(self, *, initial: float = 1.0, maximum: float = 30.0):
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next(self) -> float:
        delay = min(self.initial * 2**self.failures, self.maximum)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class Supervised:
    """One child command, restarted with back-off whenever it exits until ``stop()``.

    ``check()`` is called from the supervising loop; it notices an exit, says when the
    restart will be, and restarts once the delay is over. ``spawn``, ``end`` (stops a
    process group) and ``clock`` are there for tests: a fake process, a fake clock.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        say: Callable[[str], None],
        env: dict[str, str] | None = None,
        healthy_after: float = 30.0,
        backoff: Backoff | None = None,
        spawn: Callable[[list[str]], subprocess.Popen] | None = None,
        end: Callable[..., object] = stop_process_group,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.command = command
        self.say = say
        self.env = env
        self.healthy_after = healthy_after
        self.backoff = backoff or Backoff()
        self.spawn = spawn or self._popen
        self.end = end
        self.clock = clock
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.restarts = 0
        self.stopped = False

    def _popen(self, command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(command, env=self.env, start_new_session=True)  # noqa: S603

    def start(self) -> None:
        self.proc = self.spawn(self.command)
        self.started_at = self.clock()
        self.restart_at = None

    def check(self) -> None:
        """Notice an exit (and schedule the restart) or restart when it is due."""
        if self.stopped:
            return
        now = self.clock()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                self.say(f"{self.name}: restarting (restart {self.restarts})")
                self.start()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        code = self.proc.returncode
        self.end(self.proc, timeout=5)  # what it started may still run
        if now - self.started_at >= self.healthy_after:
            self.backoff.reset()
        delay = self.backoff.next()
        self.say(f"{self.name} exited with {code}; restarting in {delay:g} s")
        self.restart_at = now + delay

    def stop(self, timeout: float = 15) -> None:
        """End the child and its process group; no restart after this."""
        self.stopped = True
        self.restart_at = None
        if self.proc is not None:
            self.end(self.proc, timeout=timeout)
