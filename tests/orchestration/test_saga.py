"""The saga declaration: a step's activity may live in any module, and its runner runs what
the declaration names; a declaration it cannot run is refused where it is written."""

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from orchestration.activities.tenants import steps_runner, tenant_step
from orchestration.workflows._steps.common import LONG, SHORT
from orchestration.workflows._steps.saga import Saga, Step

ran: list[tuple[str, str]] = []


@tenant_step
def billing_open_account(tenant_id: str) -> str:  # not in activities/tenants.py, no prefix
    ran.append(("open_account", tenant_id))
    return "acct-1"


@tenant_step(heartbeat_every=5)
def billing_build_ledger(tenant_id: str) -> None:  # commits as it goes, between transactions
    ran.append(("build_ledger", tenant_id))


@tenant_step
def billing_first_invoice(tenant_id: str) -> int:
    ran.append(("first_invoice", tenant_id))
    return 1


BILLING = Saga(
    steps=[
        Step(billing_open_account, SHORT, local=True),
        Step(billing_build_ledger, LONG, local=True),
        Step(billing_first_invoice, SHORT, local=True),
    ],
    group_runner=steps_runner,
)


def test_the_runner_runs_steps_declared_in_any_module(transactional_db):
    ran.clear()
    names = [step.activity.__name__ for step in BILLING.steps]
    assert set(BILLING.runner.step_bodies) == set(names)
    tenant_id = "5f0b6a8e-3c1d-4c2e-9a57-2f1c7b9d0e11"  # no such tenant: progress is not kept
    results = ActivityEnvironment().run(BILLING.runner, tenant_id, names)
    assert results == ["acct-1", None, 1]
    assert ran == [(n, tenant_id) for n in ("open_account", "build_ledger", "first_invoice")]
    # The workers host the runner, not the steps it runs.
    assert BILLING.activities == [BILLING.runner]


def test_the_runner_refuses_a_step_its_saga_does_not_declare(transactional_db):
    with pytest.raises(Exception, match="no such step: tenant_mark_active"):
        ActivityEnvironment().run(BILLING.runner, "x", ["tenant_mark_active"])


def test_a_grouped_step_not_declared_as_a_step_is_refused_naming_it():
    @activity.defn
    def billing_send_welcome(tenant_id: str) -> None:
        pass

    with pytest.raises(
        TypeError, match=r"step billing_send_welcome: .* not declared with tenant_step"
    ):
        Saga(steps=[Step(billing_send_welcome, SHORT, local=True)], group_runner=steps_runner)


def test_local_steps_need_a_runner_and_only_local_steps_may_end_the_run():
    with pytest.raises(TypeError, match="need a runner"):
        Saga(steps=[Step(billing_open_account, SHORT, local=True)])
    with pytest.raises(TypeError, match="step billing_open_account: only a local step"):
        Saga(steps=[Step(billing_open_account, SHORT, may_end_run=True)])
