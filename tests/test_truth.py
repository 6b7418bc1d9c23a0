"""The answer key on realistic rows: the agents' event lines and AzureActivity records served by the Log
Analytics stand-in and read with the real azure-monitor-query client, joined by haymaker/truth.py.

The ledger here is an in-memory stand-in (it only answers who the run's agents were); tests/test_truth_cli.py
runs the whole command against Azurite.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from haymaker.cloud import azure_credential
from haymaker.ledger import AgentRecord, RunRecord
from haymaker.loganalytics import LogAnalytics, LogAnalyticsError
from haymaker.naming import resource_group_name, run_resource_group_name
from haymaker.truth import DELIVERY, MISTAKE, build
from haymaker import truthreport
from tests.fakes.cloud import WORKSPACE_RESOURCE_ID
from tests.fakes.runlog import DEPLOYER_OBJECT_ID, SUBSCRIPTION, Agent, RunLog, agent, resource_id

RUN = "20261124t0600z-7f3e"
OTHER = "20261124t0600z-0b0b"  # a second run, live at the same time
VM = "compute-01-linux-vm-web-server"
VNET = "networking-01-virtual-network"
T0 = datetime(2026, 11, 24, 6, 15, tzinfo=timezone.utc)
AFTER = T0 + timedelta(hours=10)  # long after the run: everything has arrived
VM_OPS = ("Microsoft.Resources/deployments/write", "Microsoft.Compute/virtualMachines/write",
          "Microsoft.Network/networkInterfaces/write", "Microsoft.Network/publicIPAddresses/write")


class Ledger:
    """Who the run's agents were, as the ledger records them after `up`."""

    def __init__(self, *runs: tuple[str, list[str]]):
        self.runs = {run_id: RunRecord(run_id=run_id, environment="dev", trigger="schedule", status="verified",
                                       started_at=T0 - timedelta(minutes=15), expires_at=T0 + timedelta(hours=8),
                                       scenarios=scenarios, duration_hours=8) for run_id, scenarios in runs}

    def get_run(self, run_id):
        return self.runs.get(run_id)

    def list_agents(self, run_id):
        out = []
        for scenario in self.runs[run_id].scenarios:
            who = agent(run_id, scenario)
            out.append(AgentRecord(run_id, scenario, "started", who.group, who.client_id, who.object_id, who.job))
        return out


@pytest.fixture
def la(fake_cloud):
    credential = azure_credential(fake_cloud.endpoints(), fake_cloud.github_actions_env())
    return LogAnalytics(WORKSPACE_RESOURCE_ID, credential, fake_cloud.log_analytics.base_url)


@pytest.fixture
def log(fake_cloud):
    return RunLog(fake_cloud.log_analytics, RUN)


def key_of(la, catalog, now=AFTER, ledger=None):
    key = build(RUN, ledger=ledger or Ledger((RUN, [VM])), logs=la, catalog=catalog, now=now)
    recs = truthreport.records(key)
    return key, recs, truthreport.summary(key, recs)


def by_step(recs, step):
    found = [r for r in recs if r["step"] == step]
    assert found, f"no record of step {step}"
    return found


def deploy_network(log, who, t, skew=timedelta(0)):
    """create-vnet, create-nsg, allow-http back to back; ARM stamps each request ``skew`` after the agent's clock."""
    for step, op in [("create-vnet", "Microsoft.Network/virtualNetworks/write"),
                     ("create-nsg", "Microsoft.Network/networkSecurityGroups/write"),
                     ("allow-http", "Microsoft.Network/networkSecurityGroups/securityRules/write")]:
        log.request(who, t + timedelta(seconds=2) + skew, op, took=timedelta(seconds=8))
        t = log.step(who, "deploy", step, t, 12)
    return t


def test_a_clean_deploy_matches_every_expected_operation(la, log, catalog, fake_cloud):
    vm = agent(RUN, VM)
    log.line(vm, T0, "agent-start")
    t = deploy_network(log, vm, T0)
    for n, op in enumerate(VM_OPS):  # az vm create: a template deployment that writes the VM, its NIC, its IP
        log.request(vm, t + timedelta(seconds=5 + n), op, took=timedelta(seconds=90))
    log.step(vm, "deploy", "create-vm", t, 140)
    key, recs, doc = key_of(la, catalog)
    assert [r["step"] for r in recs] == ["create-vnet", "create-nsg", "allow-http", "create-vm"]
    create_vm = by_step(recs, "create-vm")[0]
    assert create_vm["matched"] == list(VM_OPS) and create_vm["missing"] == [] and create_vm["unexpected"] == []
    assert {o["status"] for o in create_vm["observed"]} == {"Succeeded"}
    assert (doc["expected"], doc["matched"], doc["coverage"], doc["events"]) == (7, 7, 1.0, 14)  # Start + Success each
    assert doc["complete"] and doc["steps_in_delivery_window"] == 0
    # Both queries said what they read: the run's jobs, its identities and groups, within its window.
    queries = [q["query"] for q in fake_cloud.log_analytics.queries]
    assert any(f'"{vm.job}"' in q for q in queries if q.startswith("ContainerAppConsoleLogs_CL"))
    activity = next(q for q in queries if q.startswith("AzureActivity"))
    assert vm.object_id in activity and vm.client_id in activity and run_resource_group_name(RUN) in activity


def test_clock_skew_between_the_agent_and_the_activity_log_keeps_each_operation_on_its_step(la, log, catalog):
    vm = agent(RUN, VM)
    # The agent's clock is 50 s behind ARM's: every record is stamped after the step that caused it logged its
    # end, inside the next step, which started at once.
    deploy_network(log, vm, T0, skew=timedelta(seconds=50))
    _, recs, doc = key_of(la, catalog)
    for step, op in [("create-vnet", "Microsoft.Network/virtualNetworks/write"),
                     ("create-nsg", "Microsoft.Network/networkSecurityGroups/write"),
                     ("allow-http", "Microsoft.Network/networkSecurityGroups/securityRules/write")]:
        (r,) = by_step(recs, step)
        assert [o["operation"] for o in r["observed"]] == [op] and r["matched"] == [op], r
    assert doc["coverage"] == 1.0


def test_a_retried_step_that_produced_the_operation_twice(la, log, catalog):
    vm = agent(RUN, VM)
    t = T0
    first = log.request(vm, t + timedelta(seconds=2), "Microsoft.Network/virtualNetworks/write", final="Failure")
    t = log.step(vm, "deploy", "create-vnet", t, 10, ok=False)
    log.line(vm, t, "retry", phase="deploy", step="create-vnet", attempt=1, delay_seconds=20.0, reason="throttled")
    t += timedelta(seconds=20)
    second = log.request(vm, t + timedelta(seconds=2), "Microsoft.Network/virtualNetworks/write")
    log.step(vm, "deploy", "create-vnet", t, 10, attempt=2)
    _, recs, doc = key_of(la, catalog)
    (r,) = by_step(recs, "create-vnet")  # one step, two attempts
    assert (r["attempts"], r["ok"], r["outcome"]) == (2, True, "ok")
    assert [(o["status"], o["correlation_id"]) for o in r["observed"]] == [("Failed", first), ("Succeeded", second)]
    assert r["matched"] == ["Microsoft.Network/virtualNetworks/write"] and r["unexpected"] == []
    assert (doc["expected"], doc["matched"], doc["events"]) == (1, 1, 4)
    assert "Microsoft.Network/virtualNetworks/write (Failed) Microsoft.Network/virtualNetworks/write (Succeeded)" \
        in truthreport.to_csv(recs)


def test_an_operation_whose_final_record_arrives_minutes_later(la, log, catalog):
    """az vm deallocate --no-wait style: the step ends, ARM records the outcome 7 minutes later."""
    vm = agent(RUN, VM)
    t = deploy_network(log, vm, T0)
    log.request(vm, t + timedelta(seconds=1), "Microsoft.Compute/virtualMachines/delete",
                took=timedelta(minutes=7))
    end = log.step(vm, "cleanup", "delete-vm", t, 3)
    log.step(vm, "cleanup", "delete-network", end + timedelta(seconds=1), 20)  # runs while the delete goes on
    _, recs, _ = key_of(la, catalog)
    (r,) = by_step(recs, "delete-vm")
    assert [(o["operation"], o["status"], o["events"]) for o in r["observed"]] == [
        ("Microsoft.Compute/virtualMachines/delete", "Succeeded", 2)]
    assert by_step(recs, "delete-network")[0]["observed"] == []  # the late Success did not land on the next step


def test_records_still_inside_the_delivery_window_are_said_to_be_so(la, log, catalog, fake_cloud):
    vm = agent(RUN, VM)
    t = deploy_network(log, vm, T0)
    end = log.step(vm, "deploy", "create-vm", t, 60)
    early = end + timedelta(minutes=3)  # the create-vm records have not reached the workspace yet
    _, recs, doc = key_of(la, catalog, now=early)
    (r,) = by_step(recs, "create-vm")
    assert r["missing"] == list(VM_OPS) and r["in_delivery_window"]
    assert not doc["complete"] and doc["final_after"] == (end + DELIVERY).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "Not final" in truthreport.to_markdown(recs, doc)
    for n, op in enumerate(VM_OPS):  # now they arrive
        log.request(vm, t + timedelta(seconds=3 + n), op)
    _, recs, doc = key_of(la, catalog, now=end + DELIVERY + timedelta(seconds=1))
    (r,) = by_step(recs, "create-vm")
    assert r["matched"] == list(VM_OPS) and not r["in_delivery_window"] and doc["complete"]


def test_a_failed_step_that_still_produced_a_failed_event(la, log, catalog):
    vm = agent(RUN, VM)
    t = deploy_network(log, vm, T0)
    for n, op in enumerate(VM_OPS[:2]):  # the deployment and the VM write fail (quota); NIC and IP never came
        log.request(vm, t + timedelta(seconds=4 + n), op, final="Failure", took=timedelta(seconds=30))
    log.step(vm, "deploy", "create-vm", t, 60, ok=False)
    _, recs, doc = key_of(la, catalog)
    (r,) = by_step(recs, "create-vm")
    assert (r["ok"], r["outcome"]) == (False, "failed")
    assert r["matched"] == list(VM_OPS[:2]) and r["missing"] == list(VM_OPS[2:])
    assert {o["status"] for o in r["observed"]} == {"Failed"}
    assert doc["scenarios"][0]["coverage"] == round(5 / 7, 4)


def test_a_declared_mistake_is_labelled_and_its_failed_write_matches(la, log, catalog):
    vm = agent(RUN, VM)
    t = T0 + timedelta(hours=3)
    log.request(vm, t + timedelta(seconds=2), "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", final="Failure")
    log.step(vm, "operate", "resize-to-mistyped-size", t, 6, ok=False, expected_failure=True, cadence="rare")
    _, recs, _ = key_of(la, catalog)
    (r,) = by_step(recs, "resize-to-mistyped-size")
    assert (r["label"], r["outcome"], r["cadence"]) == (MISTAKE, "failed as expected", "rare")
    # ARM logged the name in upper case: it still matches the catalog's, and is reported as the catalog spells it.
    assert r["matched"] == ["Microsoft.Compute/virtualMachines/write"] and r["unexpected"] == []
    assert r["observed"][0]["status"] == "Failed"


def test_two_runs_overlapping_never_mix_and_the_deployer_is_platform_activity(la, log, catalog):
    mine, theirs = agent(RUN, VM), agent(OTHER, VM)
    other = RunLog(log.la, OTHER)
    for who, writer in ((mine, log), (theirs, other)):  # same scenario, same minutes, two runs
        writer.line(who, T0, "agent-start")
        deploy_network(writer, who, T0)
    log.request(None, T0 - timedelta(minutes=5), "Microsoft.Resources/subscriptions/resourceGroups/write",
                f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{mine.group}")
    other.request(None, T0 - timedelta(minutes=5), "Microsoft.App/jobs/write")  # the other run's control group
    log.request(None, T0 - timedelta(minutes=4), "Microsoft.App/jobs/write")  # ours
    # Someone else's change in a group that is not the run's: no part of this answer key.
    log.request(None, T0, "Microsoft.Storage/storageAccounts/write", resource_id("unrelated-rg",
                "Microsoft.Storage/storageAccounts/write"))
    key, recs, doc = key_of(la, catalog, ledger=Ledger((RUN, [VM]), (OTHER, [VM])))
    assert len(recs) == 3 and all(r["run_id"] == RUN for r in recs)
    assert all(len(r["observed"]) == 1 for r in recs)  # each step saw its own request, not the other run's
    assert doc["events"] == 6 and doc["coverage"] == 1.0
    platform = doc["platform_activity"]
    assert platform["events"] == 4  # the group and our job, Start + Success each
    assert {op["operation"] for op in platform["operations"]} == {
        "Microsoft.Resources/subscriptions/resourceGroups/write", "Microsoft.App/jobs/write"}
    assert all(op["caller"] == DEPLOYER_OBJECT_ID for op in platform["operations"])
    assert all(RUN.lower() in op["resource_id"].lower() for op in platform["operations"])


def test_a_borrowed_identity_counts_only_in_its_own_runs_group(la, log, catalog):
    """A Graph scenario's identity is the platform's, borrowed: the next run that leases it acts as the same
    principal, inside the window this run's key still reads. Only the records in this run's group count."""
    groups = "identity-03-entra-users-groups"
    mine = agent(RUN, groups)
    nxt = Agent(OTHER, groups, mine.client_id, mine.object_id)  # the same identity, leased by the next run
    log.line(mine, T0, "agent-start")
    log.request(mine, T0 + timedelta(seconds=2), "Microsoft.Storage/storageAccounts/write")
    log.step(mine, "deploy", "create-report-storage", T0, 30)
    after_ours = T0 + timedelta(hours=8, minutes=5)  # our run has expired; the next one is deploying
    RunLog(log.la, OTHER).request(nxt, after_ours, "Microsoft.Storage/storageAccounts/write")
    key, recs, doc = key_of(la, catalog, ledger=BorrowingLedger((RUN, [groups]), {groups: mine}))
    assert key.end > after_ours  # the next run's request is inside the window read
    (scenario,) = doc["scenarios"]
    assert doc["events"] == 2 and scenario["outside_steps"] == []  # our Start and Success, nothing of theirs
    assert by_step(recs, "create-report-storage")[0]["matched"] == ["Microsoft.Storage/storageAccounts/write"]


class BorrowingLedger(Ledger):
    def __init__(self, run, who: dict):
        super().__init__(run)
        self.who = who

    def list_agents(self, run_id):
        return [AgentRecord(run_id, s, "started", resource_group_name(run_id, s), a.client_id, a.object_id,
                            a.job) for s, a in self.who.items()]


def test_unexpected_operations_and_records_outside_any_step(la, log, catalog):
    vm = agent(RUN, VM)
    t = T0 + timedelta(hours=2)
    log.request(vm, t + timedelta(seconds=1), "Microsoft.Compute/virtualMachines/write", audits=1)  # Azure Policy
    log.request(vm, t + timedelta(seconds=2), "Microsoft.Compute/virtualMachines/extensions/write")  # not declared
    log.step(vm, "operate", "tag-owner", t, 8)
    log.request(vm, t + timedelta(hours=1), "Microsoft.Network/publicIPAddresses/write")  # no step was running
    _, recs, doc = key_of(la, catalog)
    (r,) = by_step(recs, "tag-owner")
    assert r["unexpected"] == ["Microsoft.Compute/virtualMachines/extensions/write"]
    # Azure Policy evaluated the write: shown with the step, not counted as unexpected.
    assert [(o["operation"], o["category"]) for o in r["observed"] if o["category"] != "Administrative"] == [
        ("Microsoft.Authorization/policies/audit/action", "Policy")]
    (scenario,) = doc["scenarios"]
    assert [op["operation"] for op in scenario["outside_steps"]] == ["Microsoft.Network/publicIPAddresses/write"]
    assert doc["events"] == 7  # attributable to the run, in a step or not


def test_a_result_past_the_row_limit_is_read_whole_by_splitting_the_window(la, log, catalog, fake_cloud):
    vm = agent(RUN, VM)
    t = T0
    for i in range(6):  # operate steps an hour apart, each one request
        log.request(vm, t + timedelta(seconds=1), "Microsoft.Compute/virtualMachines/write")
        log.step(vm, "operate", "tag-owner", t, 5)
        t += timedelta(hours=1)
    fake_cloud.log_analytics.row_limit = 4
    _, recs, doc = key_of(la, catalog)
    assert len(recs) == 6 and doc["matched"] == 6 and doc["events"] == 12
    assert len(fake_cloud.log_analytics.queries) > 2  # partial answers were split and asked again


def test_a_partial_answer_that_splitting_cannot_fix_is_an_error_not_a_wrong_key(la, log, catalog, fake_cloud):
    vm = agent(RUN, VM)
    for n in range(3):  # three records in the same second: no narrower window separates them
        log.record(vm.object_id, vm.client_id, T0, "Microsoft.Compute/virtualMachines/write", "Start",
                   resource_id(vm.group, "Microsoft.Compute/virtualMachines/write", f"vm{n}"))
    fake_cloud.log_analytics.row_limit = 2
    with pytest.raises(LogAnalyticsError, match="only part of the Activity Log records.*record count limit"):
        key_of(la, catalog)


def test_the_report_in_each_format(la, log, catalog):
    vm = agent(RUN, VM)
    t = deploy_network(log, vm, T0)
    log.step(vm, "operate", "resize-to-mistyped-size", t + timedelta(hours=1), 4, ok=False, expected_failure=True)
    _, recs, doc = key_of(la, catalog)
    # JSONL: one record per step, each a complete line of the answer key.
    lines = truthreport.to_jsonl(recs).splitlines()
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert set(first) == {"run_id", "scenario", "phase", "step", "plane", "plane_observed", "command", "start", "end",
                          "outcome", "ok", "attempts", "cadence", "label", "expected", "matched", "missing",
                          "unexpected", "observed", "in_delivery_window"}
    assert set(first["observed"][0]) == {"operation", "status", "category", "resource_id", "correlation_id", "time",
                                         "events", "plane"}
    # CSV: a header and one row per step, lists space-separated.
    rows = list(csv.DictReader(io.StringIO(truthreport.to_csv(recs))))
    assert [r["step"] for r in rows] == [r["step"] for r in recs] and tuple(rows[0]) == truthreport.CSV_COLUMNS
    assert rows[3]["label"] == MISTAKE and rows[3]["missing"] == "Microsoft.Compute/virtualMachines/write"
    # Markdown: the summary first, then a table per scenario, then the platform's activity.
    md = truthreport.to_markdown(recs, doc)
    assert md.startswith(f"# Answer key: run {RUN}\n")
    assert md.index("| coverage | 75% (3 of 4 expected operations observed) |") < md.index(f"## {VM}")
    assert md.index(f"## {VM}") < md.index("## Platform activity")
    table = [line for line in md.splitlines() if line.startswith("| 06:")]
    assert len(table) == 3 and all(line.count(" | ") == 6 for line in table)
    assert "(mistake)" in md


def test_a_scenario_without_an_identity_in_the_ledger_is_noted(la, log, catalog):
    class NoAgents(Ledger):
        def list_agents(self, run_id):
            return []

    vm = agent(RUN, VM)
    deploy_network(log, vm, T0)
    _, recs, doc = key_of(la, catalog, ledger=NoAgents((RUN, [VM])))
    assert len(recs) == 3 and doc["matched"] == 0
    assert doc["notes"] == [f"{VM}: no identity in the ledger, so none of its Activity Log records can be attributed"]


def test_a_step_line_without_a_readable_time_is_left_out_and_said_so(la, log, catalog):
    vm = agent(RUN, VM)
    log.la.add_console_line(vm.job, {"time": "yesterday", "run_id": RUN, "scenario": VM, "event": "step",
                                     "phase": "deploy", "step": "create-vnet", "attempt": 1, "ok": True}, T0)
    log.step(vm, "deploy", "create-nsg", T0 + timedelta(seconds=30), 10)
    _, recs, doc = key_of(la, catalog)
    assert [r["step"] for r in recs] == ["create-nsg"]
    assert doc["notes"] == ["1 step line(s) without a readable time were left out"]
