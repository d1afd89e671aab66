import asyncio
from argparse import ArgumentTypeError

from django.conf import settings
from django.core.management.base import CommandError

from orchestration import client as temporal_client
from orchestration.management.commands._temporal import TemporalCommand, seconds
from orchestration.rollout import deployment_roll_out, deployment_wait_drained
from orchestration.versioning import (
    DeploymentError,
    DeploymentState,
    build_id,
    deployment_describe,
    deployment_set_current,
    deployment_set_ramping,
)

ACTIONS = ("show", "set-current", "ramp", "stop-ramp", "rollout", "drain")


def _percentages(value: str) -> tuple[float, ...]:
    try:
        steps = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise ArgumentTypeError(f"percentages like 10,50 expected; got {value!r}.") from None
    if not all(0 < step < 100 for step in steps) or list(steps) != sorted(set(steps)):
        raise ArgumentTypeError(f"rising percentages between 0 and 100 expected; got {value!r}.")
    return steps


class Command(TemporalCommand):
    help = (
        "Show the workers' worker deployment (TEMPORAL_DEPLOYMENT_NAME) or change which "
        "version new runs start on. 'show' lists the current and ramping versions and every "
        "version's state; 'set-current BUILD_ID' sends all new runs (and auto-upgrading runs) "
        "to BUILD_ID; 'ramp BUILD_ID --percentage N' sends N%% of them there; 'stop-ramp' "
        "ends a ramp. Pinned runs stay on the version they started on. 'rollout [BUILD_ID]' "
        "(default: this code's build) waits until BUILD_ID's workers poll every queue, ramps "
        "(--ramp), makes it current and waits until the version it replaced has no open "
        "pinned run: exit 0 means the old workers can stop. 'drain BUILD_ID' waits for that "
        'alone. See docs/operations.md "Deploying a new worker build".'
    )

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="show", choices=ACTIONS)
        parser.add_argument("build_id", nargs="?", help="The version's build id.")
        parser.add_argument(
            "--percentage", type=float, help="With ramp: the share of new runs, 0 to 100."
        )
        parser.add_argument(
            "--deployment",
            default=None,
            help="The worker deployment (default TEMPORAL_DEPLOYMENT_NAME).",
        )
        parser.add_argument(
            "--allow-no-pollers",
            action="store_true",
            help="set-current: accept a version no worker has polled for yet.",
        )
        parser.add_argument(
            "--ignore-missing-task-queues",
            action="store_true",
            help="set-current/ramp/rollout: accept a version that does not poll every task "
            "queue the current version polls (e.g. after a queue was retired).",
        )
        parser.add_argument(
            "--ramp",
            type=_percentages,
            default=(),
            help="rollout: percentages of new runs to send to the build, in turn, before it "
            "becomes current, e.g. 10,50 (default: none, straight to current).",
        )
        parser.add_argument(
            "--ramp-interval",
            type=seconds,
            default=60.0,
            help="rollout: seconds at each --ramp step (default 60).",
        )
        parser.add_argument(
            "--wait-pollers",
            type=seconds,
            default=120.0,
            help="rollout: seconds to wait for the build's workers to poll (default 120).",
        )
        parser.add_argument(
            "--drain-timeout",
            type=seconds,
            default=900.0,
            help="rollout/drain: seconds to wait for the replaced version's pinned runs to "
            "finish (default 900); then the command fails and the old workers must stay.",
        )

    def handle(self, *args, **options):
        action, build = options["action"], options["build_id"]
        if action in ("set-current", "ramp") and not build:
            raise CommandError(f"{action} needs the build id of the version, e.g. {build_id()}.")
        if action == "drain" and not build:
            raise CommandError("drain needs the build id of the version that is to drain.")
        if action in ("show", "stop-ramp") and build:
            raise CommandError(f"{action} takes no build id (got {build!r}).")
        if action == "rollout":
            build = build or build_id()
        elif options["ramp"]:
            raise CommandError("--ramp applies to rollout only (use ramp BUILD_ID for one step).")
        if action == "ramp" and options["percentage"] is None:
            raise CommandError("ramp needs --percentage (0 to 100).")
        if action != "ramp" and options["percentage"] is not None:
            raise CommandError("--percentage applies to ramp only.")
        name = options["deployment"] or settings.TEMPORAL_DEPLOYMENT_NAME
        try:
            state = asyncio.run(self.run(action, build, name, options))
        except DeploymentError as exc:
            raise CommandError(str(exc)) from exc
        except (OSError, RuntimeError) as exc:  # the client cannot reach Temporal
            raise CommandError(
                f"Cannot reach Temporal at {settings.TEMPORAL_ADDRESS}: {exc}"
            ) from exc
        self.show(state)

    async def run(self, action: str, build: str | None, name: str, options) -> DeploymentState:
        client = await temporal_client.connect()
        ignore = options["ignore_missing_task_queues"]
        if action == "set-current":
            await deployment_set_current(
                client,
                build_id=build,
                name=name,
                allow_no_pollers=options["allow_no_pollers"],
                ignore_missing_task_queues=ignore,
            )
        elif action == "ramp":
            await deployment_set_ramping(
                client,
                build_id=build,
                percentage=options["percentage"],
                name=name,
                ignore_missing_task_queues=ignore,
            )
        elif action == "stop-ramp":
            await deployment_set_ramping(client, build_id="", percentage=0, name=name)
        elif action == "rollout":
            previous = await deployment_roll_out(
                client,
                build_id=build,
                name=name,
                ramp=options["ramp"],
                ramp_interval=options["ramp_interval"],
                poll_timeout=options["wait_pollers"],
                drain_timeout=options["drain_timeout"],
                ignore_missing_task_queues=ignore,
            )
            self.stdout.write(
                f"build {build} is current; {previous} has no open pinned run"
                if previous
                else f"build {build} is current; no other version had to drain"
            )
        elif action == "drain":
            await deployment_wait_drained(
                client, build_id=build, name=name, within=options["drain_timeout"]
            )
            self.stdout.write(f"build {build} has no open pinned run")
        return await deployment_describe(client, name=name)

    def show(self, state: DeploymentState) -> None:
        write = self.stdout.write
        write(f"worker deployment {state.name}")
        write(f"  current: {state.current_build_id or '(none: unversioned workers)'}")
        if state.ramping_build_id:
            write(f"  ramping: {state.ramping_build_id} at {state.ramping_percentage:g}%")
        write(f"  this code's build id: {build_id()}")
        write("  versions:")
        for version in state.versions:
            drainage = f" ({version.drainage})" if version.drainage else ""
            write(f"    {version.build_id}  {version.status}{drainage}")
