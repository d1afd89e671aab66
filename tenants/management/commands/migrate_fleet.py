import contextlib
import time
from collections.abc import Callable, Iterator

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, connection

from core.db import listen
from core.progress import progress
from tenants import fleet
from tenants.models import FleetRun, FleetStatus

# Lines a --status prints about failed tenants; the admin lists them all.
SHOWN_FAILURES = 20


class Command(BaseCommand):
    help = (
        "Migrate every tenant schema by a fleet run on the workers, and watch or steer it. "
        "Without an action: request the run for the code's migrations (what `migrate` does). "
        "--wait follows the run to its end and exits non-zero unless every tenant is current."
    )

    def add_arguments(self, parser):
        actions = parser.add_mutually_exclusive_group()
        actions.add_argument(
            "--status",
            action="store_true",
            help="Show the latest run and how many tenant schemas are behind.",
        )
        actions.add_argument(
            "--retry-failed",
            action="store_true",
            help="Re-run the latest run over the tenants it failed to migrate.",
        )
        actions.add_argument(
            "--pause",
            action="store_true",
            help="Pause the latest run (migrations under way finish).",
        )
        actions.add_argument("--resume", action="store_true", help="Resume a paused run.")
        actions.add_argument("--cancel", action="store_true", help="Cancel the latest run.")
        parser.add_argument(
            "--concurrency",
            type=int,
            help="Schemas migrated at once (default FLEET_MIGRATION_CONCURRENCY).",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Follow the run to its end, with a progress bar on a terminal.",
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=0.5,
            help="Longest wait between two reads of the run's progress (--wait): the run "
            "is read again as soon as the database says it changed (LISTEN), and at least "
            "this often.",
        )

    def handle(self, *args, **options):
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError(f"--concurrency must be at least 1, got {options['concurrency']}.")
        if options["poll"] <= 0:
            raise CommandError(
                f"--poll must be a positive number of seconds, got {options['poll']}."
            )
        if options["status"]:
            return self.status()
        try:
            run = self.act(options)
        except fleet.FleetRequestRefused as exc:
            raise CommandError(str(exc)) from exc
        if options["wait"]:
            self.wait(run, poll=options["poll"])
        return None

    def act(self, options) -> FleetRun:
        for action in ("pause", "resume", "cancel"):
            if options[action]:
                run = fleet.fleet_run_control(action=action)
                self.stdout.write(f"Fleet run {run.pk}: {action} requested ({run.status}).")
                return run
        if options["retry_failed"]:
            run = fleet.fleet_run_retry_failed()
            self.stdout.write(
                f"Fleet run {run.pk}: retrying {run.failures.count()} failed tenant(s) "
                f"(attempt {run.attempt})."
            )
            return run
        run, created = fleet.fleet_run_request(concurrency=options["concurrency"])
        said = "requested" if created else f"already {run.status}"
        self.stdout.write(f"Fleet run {run.pk} {said}.")
        return run

    def wait(self, run: FleetRun, *, poll: float) -> None:
        last_change, seen = time.monotonic(), None
        with (
            progress(self.stdout, total=run.total, description=run.pk) as bar,
            run_changes() as changed,
        ):
            lost = False  # the database is unreachable: the run goes on without us
            while True:
                summary, trouble = _read(run)
                if trouble:
                    if not lost:
                        bar.note(
                            f"Database unreachable ({trouble}); the run goes on on the "
                            "workers, reading it again until it is back."
                        )
                    lost, last_change = True, time.monotonic()
                    changed(poll)
                    continue
                if lost:
                    bar.note("Database back.")
                    lost = False
                bar.advance_to(summary["done"], run.status, total=run.total)
                if not run.is_open:
                    break
                if (summary["done"], run.status) != seen:
                    seen, last_change = (summary["done"], run.status), time.monotonic()
                elif time.monotonic() - last_change > 60:
                    bar.note(
                        "No progress for 60 s: is a worker running (manage.py run_temporal_worker)?"
                    )
                    last_change = time.monotonic()
                changed(poll)
        self.report(run)

    def status(self) -> None:
        run = fleet.fleet_run_latest()
        if run is None:
            self.stdout.write("No fleet run yet.")
        else:
            self.report(run, final=False)
        behind, total = fleet.fleet_schemas_behind()
        self.stdout.write(f"{total - behind} of {total} active tenant schema(s) are current.")
        if behind:
            raise CommandError(f"{behind} tenant schema(s) are behind the code's migrations.")

    def report(self, run: FleetRun, *, final: bool = True) -> None:
        s = fleet.fleet_run_summary(run)
        self.stdout.write(
            f"Fleet run {run.pk} ({s['status']}, attempt {s['attempt']}): {s['migrated']} "
            f"migrated, {s['current']} already current, {s['skipped']} skipped, "
            f"{s['failed']} failed, of {s['total']}."
        )
        for failure in run.failures.all()[:SHOWN_FAILURES]:
            error = failure.error.splitlines()[0] if failure.error else ""
            self.stdout.write(
                f"  failed: tenant {failure.tenant_id} ({failure.schema_name}) at "
                f"{failure.migration or '?'}: {error}"
            )
        if s["failed"] > SHOWN_FAILURES:
            self.stdout.write(f"  … and {s['failed'] - SHOWN_FAILURES} more (see the admin).")
        if final and run.status != FleetStatus.COMPLETED:
            raise CommandError(
                f"Fleet run {run.pk} ended {run.status}: not every tenant schema is current"
                + (
                    " (manage.py migrate_fleet --retry-failed re-runs the failed ones)."
                    if s["failed"]
                    else "."
                )
            )


def _read(run: FleetRun) -> tuple[dict, str]:
    """``run`` read again and its summary, with ``""``; or ``{}`` and what went wrong while
    the database is unreachable (the next read opens a new connection)."""
    try:
        run.refresh_from_db()
        return fleet.fleet_run_summary(run), ""
    except (OperationalError, InterfaceError) as exc:
        connection.close()
        first_line = next(iter(str(exc).strip().splitlines()), "")
        return {}, f"{type(exc).__name__}: {first_line}"


@contextlib.contextmanager
def run_changes() -> Iterator[Callable[[float], None]]:
    """A function that sleeps until a fleet run changes or ``timeout`` seconds pass.

    Every UPDATE of a run sends ``NOTIFY tenants_fleet_run`` (migration ``tenants/0008``);
    listening starts before the first read, so no change is missed between a read and the
    wait after it. Without a LISTEN connection (the database is unreachable, or refuses
    one more), it sleeps, and tries to listen again at the next wait: the reads every
    ``timeout`` seconds still see every change."""

    def listening() -> psycopg.Connection | None:
        try:
            return listen("tenants_fleet_run", connect_timeout="5")
        except psycopg.Error:
            return None

    listener = listening()

    def changed(timeout: float) -> None:
        nonlocal listener
        if listener is None:  # lost (or never made): made again, once per wait at most
            listener = listening()
        if listener is not None:
            try:
                for _ in listener.notifies(timeout=timeout, stop_after=1):
                    return
                return
            except psycopg.Error:  # lost: the reads go on at their interval
                listener.close()
                listener = None
        time.sleep(timeout)

    try:
        yield changed
    finally:
        if listener is not None:
            listener.close()
