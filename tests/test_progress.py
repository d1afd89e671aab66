"""Long commands' progress: plain lines when the output is not a terminal (logs, CI, pipes),
a bar when it is; and the two commands that use it."""

import io
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from temporalio.client import Client

from core.progress import progress
from orchestration.schedules import project_schedules, token_cleanup_schedule_id
from tests.kit import run_async


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with progress(out, total=12, description="tenants") as steps:
        steps.advance("acme: migrated")
        steps.note("beta: skipped (deleted)")
        steps.advance()
    assert out.getvalue().splitlines() == [
        "tenants: [ 1/12] acme: migrated",
        "beta: skipped (deleted)",
        "tenants: [ 2/12]",
    ]
    assert "\r" not in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_a_bar_on_a_terminal():
    out = Terminal()
    with progress(out, total=3, description="schedules") as steps:
        for name in ("a", "b", "c"):
            steps.advance(f"{name}: created")
        steps.note("all done")
    text = out.getvalue()
    assert "\r" in text  # redrawn in place, not one line per step
    assert "schedules: 100%" in text
    assert "3/3" in text
    assert "c: created" in text
    assert "all done" in text
    assert "[1/3]" not in text  # no plain lines


def test_a_commands_stdout_is_unwrapped():
    # Django's OutputWrapper would end every redraw with a newline; the bar writes to the
    # stream underneath, and the wrapper's terminal test is the stream's.
    term = Terminal()
    with progress(OutputWrapper(term), total=2, description="x") as steps:
        steps.advance("one")
        steps.advance("two")
    assert "\r" in term.getvalue()
    assert "x: [1/2]" not in term.getvalue()
    plain = io.StringIO()
    with progress(OutputWrapper(plain), total=1, description="x") as steps:
        steps.advance("one")
    assert plain.getvalue() == "x: [1/1] one\n"


def test_a_negative_total_is_refused():
    with (
        pytest.raises(ValueError, match="total must be at least 0"),
        progress(io.StringIO(), total=-1, description="x"),
    ):
        pass


@pytest.mark.django_db(transaction=True)
def test_sync_tenant_template_reports_each_step():
    out = io.StringIO()
    call_command("sync_tenant_template", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "template: [1/4] schema tenant_template ready"
    assert lines[1].startswith("template: [2/4] tenant_template at ")
    assert lines[1].endswith(" migrations")
    assert lines[2].startswith("template: [3/4] dumped ")
    assert lines[2].endswith(" bytes of SQL")
    assert lines[3] == "template: [4/4] snapshot stored"
    assert lines[4].startswith("Template tenant_template stored at ")
    assert len(lines) == 5


@pytest.mark.django_db(transaction=True)
def test_sync_temporal_schedules_reports_each_schedule(temporal, settings):
    settings.TEMPORAL_QUEUE_PREFIX = f"p{uuid.uuid4().hex[:8]}"
    first, second = io.StringIO(), io.StringIO()
    call_command("sync_temporal_schedules", stdout=first)
    call_command("sync_temporal_schedules", stdout=second)

    ours = list(project_schedules())
    assert token_cleanup_schedule_id() in ours

    async def delete():
        client = await Client.connect(temporal)
        for schedule in ours:
            await client.get_schedule_handle(schedule).delete()

    run_async(delete())
    for out, what in ((first, "created"), (second, "updated")):
        assert out.getvalue() == "".join(
            f"schedules: [{n}/{len(ours)}] {schedule}: {what}\n"
            for n, schedule in enumerate(ours, 1)
        )
