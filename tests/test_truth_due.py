"""`haymaker truth --due` end to end: the runs in the ledger (Azurite) that ended and have no answer key get one,
built from the Log Analytics stand-in and kept in the reports container (Azurite's Blob service), with the real
clients and the operator's environment as the reaper's workflow has it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from haymaker.ledger import AgentRecord
from haymaker.permissions import match_request
from haymaker.runspec import check_run_id, iso, new_run_id
from tests.fakes.runlog import RunLog, agent
from tests.test_ledger import make_run
from tests.test_truth_cli import blobs, invoke, ledger  # noqa: F401 - fixtures: the ledger and its environment

VM = "compute-01-linux-vm-web-server"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
VNET, NSG = "Microsoft.Network/virtualNetworks/write", "Microsoft.Network/networkSecurityGroups/write"


def a_run(ledger, la, hours_ago: float, suffix: str, status: str, *, ended_ago: timedelta | None = None,
          requests: int = 1, last_step_ago: timedelta | None = None, **fields) -> str:
    """A run of the VM scenario in the ledger with its agent, and in the workspace: two deploy steps 15 minutes
    after its start, each with ``requests`` records of its expected operation, and a last step ending
    ``last_step_ago`` when given."""
    run_id = new_run_id(NOW - timedelta(hours=hours_ago), suffix)
    ended = NOW - ended_ago if ended_ago is not None else None
    ledger.upsert_run(make_run(run_id, status, scenarios=[VM], ended_at=ended, **fields))
    vm = agent(run_id, VM)
    ledger.upsert_agents([AgentRecord(run_id, VM, "started", vm.group, vm.client_id, vm.object_id, vm.job)])
    log = RunLog(la, run_id)
    t = check_run_id(run_id) + timedelta(minutes=15)
    log.line(vm, t, "agent-start")
    for step, op in (("create-vnet", VNET), ("create-nsg", NSG)):
        for n in range(requests):
            log.request(vm, t + timedelta(seconds=1, microseconds=n), op)
        t = log.step(vm, "deploy", step, t, 30) + timedelta(seconds=1)
    if last_step_ago is not None:
        log.step(vm, "operate", "list-vms", NOW - last_step_ago - timedelta(seconds=10), 10)
    return run_id


def stored(container) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for blob in container.list_blobs():
        run_id, name = blob.name.split("/", 1)
        runs.setdefault(run_id, []).append(name)
    return runs


def test_every_ended_run_without_an_answer_key_gets_one_and_a_failing_one_stops_no_other(ledger, fake_cloud, blobs,
                                                                                        invoke):
    la = fake_cloud.log_analytics
    verified = a_run(ledger, la, 12, "a001", "verified", ended_ago=timedelta(hours=3))
    teardown_failed = a_run(ledger, la, 11, "b002", "teardown_failed", ended_ago=timedelta(hours=2))
    # Its Activity Log is denser than Log Analytics returns in one answer, even in 5-minute windows.
    dense = a_run(ledger, la, 10, "c003", "verified", ended_ago=timedelta(minutes=90), requests=25)
    expired = a_run(ledger, la, 9, "d004", "running")  # expired an hour ago; the reaper has not got to it
    just_ended = a_run(ledger, la, 8, "e005", "verified", ended_ago=timedelta(minutes=5))
    # Ended 20 minutes ago, but its agent's clock says a step ended 5 minutes ago: its key would not be final.
    skewed = a_run(ledger, la, 7, "f006", "forced", ended_ago=timedelta(minutes=20), last_step_ago=timedelta(minutes=5))
    done = a_run(ledger, la, 13, "0007", "verified", ended_ago=timedelta(hours=4), truth_coverage=0.5, truth_events=12)
    live = a_run(ledger, la, 1, "1008", "running")
    too_old = a_run(ledger, la, 24 * 40, "2009", "verified", ended_ago=timedelta(days=39))
    la.row_limit = 40  # the others' answers are far below it

    result = invoke("truth", "--due", "--now", iso(NOW), "--json")

    assert result.exit_code == 1, result.stderr
    assert f"error: 1 answer key(s) failed ({dense})" in result.stderr
    doc = json.loads(result.stdout)  # the document is written even when a run failed
    assert [(r["run_id"], r["outcome"]) for r in doc["runs"]] == [
        (just_ended, "waiting"),  # the oldest of the due runs first
        (verified, "built"), (teardown_failed, "built"), (dense, "failed"), (expired, "built"), (skewed, "not_final")]
    assert (doc["built"], doc["failed"], doc["not_final"], doc["waiting"], doc["deferred"]) == (3, 1, 1, 1, 0)
    runs = {r["run_id"]: r for r in doc["runs"]}
    assert runs[just_ended]["due_at"] == iso(NOW + timedelta(minutes=10))
    assert runs[verified]["coverage"] == 1.0 and runs[verified]["events"] == 4
    assert runs[expired]["ended_at"] == iso(check_run_id(expired) + timedelta(hours=8))  # its expiry
    assert "returned only part of the Activity Log records" in runs[dense]["error"] and runs[dense]["failures"] == 1
    assert runs[skewed]["steps_in_delivery_window"] == 1
    # Progress on stderr, for the workflow's log.
    assert f"run {verified} (verified, ended {iso(NOW - timedelta(hours=3))}): answer key stored, coverage 100%" \
        in result.stderr
    assert f"run {just_ended} (verified, ended {iso(NOW - timedelta(minutes=5))}): ended less than 15 minutes ago: " \
           f"left for a call after {iso(NOW + timedelta(minutes=10))}" in result.stderr

    # Kept where `haymaker truth RUN_ID` keeps them, with the summary in the ledger.
    assert {run: sorted(names) for run, names in stored(blobs).items()} == {
        run: ["summary.json", "truth.jsonl", "truth.md"] for run in (verified, teardown_failed, expired)}
    for run_id in (verified, teardown_failed, expired):
        assert ledger.get_run(run_id).truth_events == 4
    for run_id in (dense, just_ended, skewed, live, too_old):
        assert ledger.get_run(run_id).truth_events is None
    assert (ledger.get_run(done).truth_coverage, ledger.get_run(done).truth_events) == (0.5, 12)  # untouched
    assert ledger.get_run(dense).truth_failures == 1
    (failed,) = [e for e in ledger.list_events(dense) if e["kind"] == "truth_failed"]
    assert failed["data"]["failures"] == 1 and "only part" in failed["data"]["error"]
    # Only the workspace's query API was asked, and the permission table has its row.
    assert la.requests and {match_request(s.method, s.path).key for s in la.requests} == {"logs.query"}

    # The next call, half an hour later: what waited is built, what failed is tried again, what is done is left.
    later = invoke("truth", "--due", "--now", iso(NOW + timedelta(minutes=30)), "--json")
    assert [(r["run_id"], r["outcome"]) for r in json.loads(later.stdout)["runs"]] == [
        (just_ended, "built"), (skewed, "built"), (dense, "failed")]
    assert later.exit_code == 1 and ledger.get_run(dense).truth_failures == 2


def test_a_call_builds_at_most_the_limit_and_runs_that_failed_go_last(ledger, fake_cloud, invoke, monkeypatch):
    la = fake_cloud.log_analytics
    failed_before = a_run(ledger, la, 14, "a010", "verified", ended_ago=timedelta(hours=5), truth_failures=3)
    oldest = a_run(ledger, la, 12, "b011", "verified", ended_ago=timedelta(hours=3))
    newer = a_run(ledger, la, 11, "c012", "failed", ended_ago=timedelta(hours=10))  # its deploy failed

    result = invoke("truth", "--due", "--now", iso(NOW), "--limit", "2")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" ", 2)[1] for line in lines[:3]] == [oldest, newer, failed_before]
    assert lines[2].endswith(": due, past the limit: left for the next call")
    assert lines[-1] == ("2 answer key(s) built, 0 failed, 0 not final, 0 inside the delivery window, 1 left for the "
                         "next call (runs started in the last 30 days, at most 2 per call)")
    # The limit's default is a setting, as the workflow sets it.
    monkeypatch.setenv("HAYMAKER_TRUTH_DUE_LIMIT", "1")
    again = invoke("truth", "--due", "--now", iso(NOW), "--json")
    assert again.exit_code == 0 and [(r["run_id"], r["outcome"]) for r in json.loads(again.stdout)["runs"]] == [
        (failed_before, "built")]
    assert invoke("truth", "--due", "--now", iso(NOW)).stdout == \
        "no run is due an answer key (runs started in the last 30 days)\n"


def test_run_id_and_due_go_apart_and_bad_input_is_refused_before_anything_is_read(ledger, fake_cloud, invoke,
                                                                                   monkeypatch):
    run_id = a_run(ledger, fake_cloud.log_analytics, 12, "a020", "verified", ended_ago=timedelta(hours=3))
    for args, message in [
        ((run_id, "--due"), f"give a RUN_ID or --due, not both: `haymaker truth {run_id}` builds that run's answer key"),
        ((), "give a RUN_ID (`haymaker runs` lists them), or --due for every ended run without an answer key"),
        (("--due", "--format", "csv"), "--format and --output are for one run"),
        (("--due", "--output", "key.md"), "--format and --output are for one run"),
        ((run_id, "--limit", "3"), "--limit, --days, --now and --json go with --due"),
        ((run_id, "--json"), "--limit, --days, --now and --json go with --due"),
        ((run_id, "--now", iso(NOW)), "--limit, --days, --now and --json go with --due"),
        (("--due", "--limit", "0"), "--limit 0 is out of range: use 1 or more"),
        (("--due", "--days", "0"), "--days 0 is out of range"),
        (("--due", "--now", "yesterday"), "'yesterday' is not an ISO-8601 time"),
    ]:
        result = invoke("truth", *args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
    monkeypatch.setenv("HAYMAKER_TRUTH_DUE_LIMIT", "0")
    result = invoke("truth", "--due")
    assert result.exit_code == 1 and "truth_due_limit from env:HAYMAKER_TRUTH_DUE_LIMIT is 0: use 1 or more" \
        in result.stderr
    assert fake_cloud.log_analytics.queries == []
    assert ledger.get_run(run_id).truth_events is None
