"""`haymaker logs` end to end: the ledger on Azurite, the workspace on the Log Analytics stand-in, the
real clients, the operator's environment as a shell would have it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from haymaker.cli import main
from haymaker.ledger import Ledger
from haymaker.runspec import iso, new_run_id
from tests.azurite import azurite, fresh_service  # noqa: F401
from tests.fakes.cloud import DEPLOYER_CLIENT_ID
from tests.fakes.runlog import RunLog, agent
from tests.test_ledger import dead_connection_string, make_run

VM = "compute-01-linux-vm-web-server"
VNET = "networking-01-virtual-network"
NOW = datetime.now(timezone.utc)
LIVE = new_run_id(NOW - timedelta(hours=2), "7f3e")
DONE = new_run_id(NOW - timedelta(days=3), "0a0a")
START = datetime.strptime(LIVE[:14], "%Y%m%dt%H%Mz").replace(tzinfo=timezone.utc) + timedelta(minutes=15)


@pytest.fixture
def operator(azurite, fake_cloud, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    """An operator's shell: the ledger (a live run of two scenarios and a finished one), the workspace."""
    for name, value in {**fake_cloud.github_actions_env(), **fake_cloud.haymaker_env(),
                        "HAYMAKER_LEDGER_CONNECTION_STRING": azurite.connection_string,
                        "HAYMAKER_LEDGER_SPOOL": str(tmp_path / "spool.jsonl"), "HOME": str(tmp_path),
                        "COLUMNS": "80"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    ledger = Ledger(fresh_service(azurite), tmp_path / "spool.jsonl")
    ledger.upsert_run(make_run(DONE, "verified", scenarios=[VM]))
    ledger.upsert_run(make_run(LIVE, "running", scenarios=[VM, VNET]))
    return RunLog(fake_cloud.log_analytics, LIVE)


@pytest.fixture
def invoke(capsys):
    """The command as a shell runs it: HayMaker's exit codes, stdout and stderr."""
    def run(*args: str):
        code = main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(exit_code=code, stdout=out.out, stderr=out.err, output=out.out + out.err)

    return run


def write_day(log: RunLog) -> list[dict]:
    vm, vnet = agent(LIVE, VM), agent(LIVE, VNET)
    written = [log.line(vm, START, "agent-start"), log.line(vnet, START, "agent-start"),
               log.line(vm, START, "phase-start", phase="deploy")]
    t = START
    for step in ("create-vnet", "create-nsg"):
        t += timedelta(seconds=1)
        written.append(log.line(vm, t + timedelta(seconds=12), "step", phase="deploy", step=step, attempt=1,
                                ok=True, seconds=12.0, started_at=t.isoformat()))
    written.append(log.line(vnet, t, "step", phase="deploy", step="create-vnet", attempt=1, ok=False, exit_code=1,
                            seconds=3.2, stderr="ERROR: (InvalidParameter)"))
    written.append(log.line(vm, t + timedelta(hours=1), "step", phase="operate", step="resize-to-mistyped-size",
                            attempt=1, ok=False, seconds=4.0, expected_failure=True, cadence="rare"))
    # Neither az's own output nor another run's lines belong in the timeline.
    log.la.add_console_line(vm.job, "WARNING: az is deprecating --foo", t)
    RunLog(log.la, DONE).line(agent(DONE, VM), t, "agent-start")
    return written


def test_the_newest_live_run_as_a_timeline_at_80_columns(operator, invoke):
    write_day(operator)
    result = invoke("logs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "scenario", "phase", "step", "outcome", "seconds"]
    assert len(lines) == 8 and all(len(line) <= 80 for line in lines)
    assert f"run {LIVE}" in result.stderr
    rows = [line.split() for line in lines[1:]]
    assert rows[0][2:] == ["agent", "start"] and rows[0][1].startswith("compute-01-linux")
    assert rows[0][1].endswith("…")  # a name too long for its column ends in an ellipsis, never wraps
    # In the order the agents wrote them, whichever agent: each step's outcome and how long it took.
    assert rows[3][1].startswith("networking-01") and rows[3][2:] == ["deploy", "create-vnet", "FAILED", "3.2"]
    assert rows[4][2:] == ["deploy", "create-vnet", "ok", "12.0"] and rows[5][2:] == ["deploy", "create-nsg", "ok",
                                                                                      "12.0"]
    assert rows[6][2:] == ["operate", "resize-to-mistyp…", "mistake", "4.0"]


def test_the_raw_json_lines_of_one_scenario(operator, fake_cloud, invoke):
    written = write_day(operator)
    result = invoke("logs", LIVE, "--scenario", VNET, "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [w for w in written if w["scenario"] == VNET]
    query = fake_cloud.log_analytics.queries[-1]["query"]
    assert f'ContainerJobName_s in ("{agent(LIVE, VNET).job}")' in query  # only that agent's job is read
    unknown = invoke("logs", LIVE, "--scenario", "ai-ml-01-cognitive-services-vision")
    assert unknown.exit_code == 1 and f"its scenarios are {VM}, {VNET}" in unknown.stderr


def test_an_empty_workspace_says_so(operator, invoke):
    result = invoke("logs", LIVE, "--since", "30m")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no lines yet" in result.stderr


def test_a_partial_answer_shows_what_came_and_warns(operator, fake_cloud, invoke):
    vm = agent(LIVE, VM)
    t = datetime.now(timezone.utc) - timedelta(minutes=1)  # inside --since 4m however long the session has run
    for step in ("a", "b", "c"):  # three lines logged in the same second: no narrower window splits them
        operator.line(vm, t, "step", phase="operate", step=step, attempt=1, ok=True, seconds=1.0,
                      delay=timedelta(0))
    fake_cloud.log_analytics.row_limit = 2
    result = invoke("logs", LIVE, "--since", "4m")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3  # the header and the two lines that came
    assert "warning: Log Analytics left lines out" in result.stderr and "record count limit" in result.stderr


def test_an_identity_without_access_to_the_workspace(operator, fake_cloud, invoke):
    fake_cloud.log_analytics.denied.add(DEPLOYER_CLIENT_ID)
    result = invoke("logs", LIVE)
    assert result.exit_code == 1
    assert "403 InsufficientAccessError" in result.stderr and "needs Log Analytics Reader" in result.stderr


def test_without_a_live_run_it_asks_for_one(operator, azurite, tmp_path, invoke):  # noqa: F811
    Ledger(fresh_service(azurite), tmp_path / "spool.jsonl").upsert_run(make_run(DONE, "verified", scenarios=[VM]))
    result = invoke("logs")
    assert result.exit_code == 1 and "no live run in the ledger: give a RUN_ID" in result.stderr


def test_follow_polls_until_every_agent_has_ended(operator, monkeypatch, invoke):
    vm, vnet = agent(LIVE, VM), agent(LIVE, VNET)
    t = NOW - timedelta(minutes=20)
    operator.line(vm, t, "agent-start")
    operator.line(vnet, t, "agent-start")
    arrivals = [
        # Poll 2: a new line, and one stamped earlier that reached the workspace late.
        lambda: [operator.line(vm, t + timedelta(minutes=5), "phase-start", phase="cleanup"),
                 operator.line(vnet, t + timedelta(minutes=1), "phase-start", phase="deploy",
                               delay=timedelta(minutes=4))],
        lambda: [operator.line(vm, t + timedelta(minutes=6), "agent-end", exit_code=0, outcome="completed")],
        lambda: [operator.line(vnet, t + timedelta(minutes=7), "agent-end", exit_code=0, outcome="completed")],
    ]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        arrivals[len(sleeps) - 1]()

    monkeypatch.setattr(time, "sleep", sleep)
    result = invoke("logs", "--follow", "--poll", "5", "--json")
    assert result.exit_code == 0, result.output
    events = [(e["scenario"], e["event"], e.get("phase")) for e in map(json.loads, result.stdout.splitlines())]
    # Each line once, each poll's new lines in the order the agents wrote them.
    assert events == [(VM, "agent-start", None), (VNET, "agent-start", None), (VNET, "phase-start", "deploy"),
                      (VM, "phase-start", "cleanup"), (VM, "agent-end", None), (VNET, "agent-end", None)]
    assert sleeps == [5, 5, 5]  # it stopped once both agents had ended


def test_a_run_the_ledger_cannot_tell_about_is_found_by_its_id(operator, fake_cloud, invoke, monkeypatch):
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", dead_connection_string())  # the ledger is down
    written = write_day(operator)
    result = invoke("logs", LIVE, "--json")
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "finding the run's lines by its id" in result.stderr
    # The run's lines only (not the other run's, not az's), in the order the agents wrote them.
    assert [json.loads(line) for line in result.stdout.splitlines()] == sorted(written, key=lambda w: w["time"])
    assert f'Log_s contains "{LIVE}"' in fake_cloud.log_analytics.queries[-1]["query"]


OLD = new_run_id(NOW - timedelta(days=9), "0c0c")


def test_an_old_run_is_read_over_its_own_hours_and_a_partial_answer_is_not_asked_again(operator, fake_cloud,
                                                                                      azurite, tmp_path, invoke):  # noqa: F811
    """Defect 5 of issue 17: a partial answer split the window down to 5 minutes, uncapped: `logs` of an
    old run sent thousands of queries past the per-user rate and never finished."""
    started = datetime.strptime(OLD[:14], "%Y%m%dt%H%Mz").replace(tzinfo=timezone.utc)
    ledger = Ledger(fresh_service(azurite), tmp_path / "spool.jsonl")
    ledger.upsert_run(make_run(OLD, "verified", scenarios=[VM], ended_at=started + timedelta(hours=8, minutes=30)))
    log, vm = RunLog(fake_cloud.log_analytics, OLD), agent(OLD, VM)
    for n in range(4):
        log.line(vm, started + timedelta(minutes=15 + n), "step", phase="deploy", step=f"s{n}", attempt=1, ok=True,
                 seconds=1.0)
    la = fake_cloud.log_analytics
    la.partial_failure = "Partial query failure: one storage shard did not answer"
    la.retry_after = False  # whether a 429 says when to come back is not documented: it need not
    result = invoke("logs", OLD)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3  # the header and the two lines that came
    assert "warning: Log Analytics left lines out" in result.stderr and "storage shard" in result.stderr
    (query,) = la.queries  # once: a narrower window would not have cured it
    first, last = query["timespan"].split("/")
    assert first.startswith(iso(started - timedelta(minutes=5))[:16])
    assert last.startswith(iso(started + timedelta(hours=9, minutes=30))[:16])  # its end, not now
    assert la.throttled == 0
