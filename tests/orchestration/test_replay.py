"""Every committed history replays against the current workflow code."""

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from orchestration.workflows import (
    DjangoTaskWorkflow,
    FleetMigrationWorkflow,
    SchemaPoolRefillWorkflow,
    TaskResultsPruneWorkflow,
    TenantDeletionWorkflow,
    TenantExportsPruneWorkflow,
    TenantProvisioningWorkflow,
    TokenCleanupWorkflow,
    UserOnboardingWorkflow,
)
from tests.orchestration.reordered_workflow import ReorderedProvisioningWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_there_are_histories_of_every_workflow():
    names = {p.stem.rsplit("-", 1)[0] for p in HISTORIES}
    assert {
        "provisioning-ok", "provisioning-failed", "deletion-ok", "onboarding-verified",
        "token-cleanup", "fleet-failed", "schema-pool-refill", "django-task-ok",
        "django-task-failed", "django-task-held", "task-results-prune", "tenant-exports-prune",
    } <= names  # fmt: skip


def test_both_paths_of_the_delete_exports_patch_are_recorded():
    """Deletions started before tenants had exports (no marker) and after (the step)."""
    deletion = [p.read_text() for p in HISTORIES if p.stem.startswith("deletion-")]
    patched = ["tenant_delete_exports" in h for h in deletion]
    assert True in patched
    assert False in patched


def test_both_paths_of_the_provisioning_patch_are_recorded():
    """Runs started before ``seed-default-data`` (no marker) and after it (a marker and the
    seeding step) must both replay until the old path is retired: see docs/versioning.md."""
    provisioning = [p.read_text() for p in HISTORIES if p.stem.startswith("provisioning-")]
    patched = ["MARKER_RECORDED" in h and "tenant_seed_defaults" in h for h in provisioning]
    assert True in patched
    assert False in patched


def test_both_paths_of_the_local_steps_patch_are_recorded():
    """Runs started before ``local-db-steps`` took every step as a task-queue activity; runs
    after it take the short database steps as local activities (recorded as markers). Both
    must replay until the old path is retired."""
    provisioning = [p.read_text() for p in HISTORIES if p.stem.startswith("provisioning-ok")]
    local = ["core_local_activity" in h for h in provisioning]
    assert True in local
    assert False in local


def patches(path: Path) -> set[str]:
    """The ids of the patches a history's run took (its ``core_patch`` markers)."""
    found = set()
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") == "core_patch":
            for payload in marker["details"]["patch-data"]["payloads"]:
                found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


def test_both_paths_of_the_pool_first_patch_are_recorded():
    """Runs since ``pool-claim-local`` try the pool first, as a local activity; a run that
    got a pool schema was one workflow task, with no task-queue activity at all."""
    provisioning = [p for p in HISTORIES if p.stem.startswith("provisioning-")]
    took = {p.stem: "pool-claim-local" in patches(p) for p in provisioning}
    assert True in took.values()
    assert False in took.values()
    pooled = [p for p in provisioning if p.stem.startswith("provisioning-pooled")]
    assert pooled
    for path in pooled:
        events = [e["eventType"] for e in json.loads(path.read_text())["events"]]
        assert events.count("EVENT_TYPE_WORKFLOW_TASK_STARTED") == 1, path.stem
        assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" not in events, path.stem


def test_both_paths_of_the_grouped_steps_patch_are_recorded():
    """Runs since ``grouped-db-steps`` take their local steps and the pool claim as groups,
    each one local activity (``tenant_run_steps``); a pooled run is one such activity."""
    provisioning = [p for p in HISTORIES if p.stem.startswith("provisioning-")]
    took = {p.stem: "grouped-db-steps" in patches(p) for p in provisioning}
    assert True in took.values()
    assert False in took.values()
    for path in provisioning:
        ran = local_activities(path)
        if took[path.stem]:  # every local step and the pool claim inside the groups
            assert set(ran) == {"tenant_run_steps"}, (path.stem, ran)
        else:
            assert "tenant_run_steps" not in ran, path.stem
    pooled = [p for p in provisioning if p.stem.startswith("provisioning-pooled")]
    assert [local_activities(p) for p in pooled if took[p.stem]] == [["tenant_run_steps"]]


def local_activities(path: Path) -> list[str]:
    """The activity types of a history's local activities (its ``core_local_activity``
    markers), in order."""
    found = []
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") == "core_local_activity":
            (payload,) = marker["details"]["data"]["payloads"]
            found.append(json.loads(base64.b64decode(payload["data"]))["activity_type"])
    return found


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays_against_current_code(path):
    replayer = Replayer(
        workflows=[
            TenantProvisioningWorkflow, TenantDeletionWorkflow, UserOnboardingWorkflow,
            TokenCleanupWorkflow, FleetMigrationWorkflow, SchemaPoolRefillWorkflow,
            DjangoTaskWorkflow, TaskResultsPruneWorkflow, TenantExportsPruneWorkflow,
        ]
    )  # fmt: skip
    result = await replayer.replay_workflow(load(path))
    assert result.replay_failure is None


@pytest.mark.parametrize(
    "path", [p for p in HISTORIES if p.stem.startswith("provisioning-ok")], ids=lambda p: p.stem
)
async def test_a_reordered_workflow_fails_replay(path):
    replayer = Replayer(workflows=[ReorderedProvisioningWorkflow])
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(path))


def test_both_paths_of_the_fleet_chunks_patch_are_recorded():
    """Fleet runs started before ``fleet-chunks`` migrated one schema per activity
    (``fleet_migrate_tenant``); runs after it migrate chunks (``fleet_migrate_tenants``)."""
    fleet = [p.read_text() for p in HISTORIES if p.stem.startswith("fleet-")]
    chunked = ['"fleet_migrate_tenants"' in h for h in fleet]
    assert True in chunked
    assert False in chunked
