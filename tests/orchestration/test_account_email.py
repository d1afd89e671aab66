"""The account emails' workflow (time-skipping server, activity stand-ins under the real
name): which emails each kind sends, in order; refused inputs; and what its runs carry."""

import base64
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from orchestration.workflows import AccountEmailInput, AccountEmailWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def run(env, arguments, *, sent: list, answer: bool = True):
    @activity.defn(name="account_email_send")
    async def send(email: str, token_id: int) -> bool:
        sent.append((email, token_id))
        return answer

    queue = f"account-email-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[AccountEmailWorkflow], activities=[send]
    ):
        # By name, as the outbox relay starts it: the worker decodes and validates.
        return await env.client.execute_workflow(
            "AccountEmailWorkflow",
            arguments,
            id=f"account-email-{uuid.uuid4()}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )


async def test_a_password_reset_sends_one_email(time_skipping_env):
    sent = []
    result = await run(time_skipping_env, {"kind": "password_reset", "token_id": 7}, sent=sent)
    assert result == [True]
    assert sent == [("password_reset", 7)]


async def test_an_email_change_confirms_to_the_new_address_then_tells_the_old(time_skipping_env):
    sent = []
    result = await run(
        time_skipping_env, {"kind": "email_change", "token_id": 9}, sent=sent, answer=False
    )
    assert result == [False, False]
    assert sent == [("email_change_confirm", 9), ("email_change_notice", 9)]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"kind": "password_reset"}, "token_id"),
        ({"kind": "password_reset", "token_id": "7"}, "token_id"),
        ({"kind": "welcome", "token_id": 7}, "kind"),
        ({"token_id": 7}, "kind"),
        ({"kind": "password_reset", "token_id": 7, "retry_window_seconds": 0}, "retry_window"),
    ],
)
async def test_invalid_input_fails_the_run_at_once_naming_the_field(
    time_skipping_env, arguments, field
):
    sent = []
    with pytest.raises(WorkflowFailureError) as failure:
        await run(time_skipping_env, arguments, sent=sent)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("InvalidInput", True)
    assert cause.details[0].startswith(field)
    assert sent == []


def test_the_start_site_refuses_an_invalid_input():
    with pytest.raises(ApplicationError, match="kind"):
        AccountEmailInput(kind="", token_id=1)
    with pytest.raises(ApplicationError, match="token_id"):
        AccountEmailInput(kind="password_reset", token_id=0)


def test_recorded_runs_carry_ids_only():
    """No address, token value or password in an account email's history: its input is the
    kind and a token id."""
    paths = sorted(HISTORIES.glob("account-email-*.json"))
    assert paths
    for path in paths:
        text = path.read_text()
        assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text), path.name  # no address
        started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
        (payload,) = started["input"]["payloads"]
        arguments = json.loads(base64.b64decode(payload["data"]))
        assert set(arguments) == {"kind", "token_id", "retry_window_seconds"}, path.name
