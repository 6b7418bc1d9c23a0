"""`haymaker runs`, `agents` and `metrics` through typer's CliRunner, against the test Azurite."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from haymaker.cli import app
from haymaker.errors import InvalidInput
from haymaker.ledger import AgentRecord, Ledger, LedgerUnreachable
from haymaker.runspec import check_run_id, new_run_id
from tests.azurite import azurite, fresh_service  # noqa: F401
from tests.test_ledger import dead_connection_string, make_agents, make_run

NOW = datetime.now(timezone.utc)
LATEST, RECENT, OLDER, OLD = (new_run_id(NOW - age, suffix) for age, suffix in [
    (timedelta(hours=1), "0001"), (timedelta(days=2), "0002"), (timedelta(days=40), "0003"),
    (timedelta(days=100), "0004")])


@pytest.fixture
def seeded(azurite, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    """Four runs (1 h, 2, 40 and 100 days old) with agents, and the environment the commands read."""
    spool = tmp_path / "spool.jsonl"
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("HAYMAKER_LEDGER_SPOOL", str(spool))
    monkeypatch.setenv("HOME", str(tmp_path))  # no developer's ~/.haymaker/config.toml
    monkeypatch.chdir(tmp_path)  # and no .env
    monkeypatch.setenv("COLUMNS", "200")  # tables as wide as a terminal's
    ledger = Ledger(fresh_service(azurite), spool)
    ledger.upsert_run(make_run(LATEST, "running", scenarios=["s1", "s2"], resources_created=10, cost_estimate_usd=2.0))
    ledger.upsert_run(make_run(RECENT, "verified", scenarios=["s1"], resources_created=4, resources_cleaned=4,
                               cost_estimate_usd=1.5, ended_at=check_run_id(RECENT) + timedelta(hours=8)))
    ledger.upsert_run(make_run(OLDER, "teardown_failed", scenarios=["s3"], resources_created=3,
                               resources_cleaned=1, resources_orphaned=2, cost_estimate_usd=1.0))
    ledger.upsert_run(make_run(OLD, "verified", scenarios=["s9"], cost_estimate_usd=9.0))
    ledger.upsert_agents(make_agents(LATEST, 2) + make_agents(RECENT, 1) + make_agents(OLDER, 1))
    return ledger


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def ids(result, key: str) -> list[str]:
    assert result.exit_code == 0, result.output
    return [row["run_id"] for row in json.loads(result.stdout)[key]]


def test_runs_newest_first_with_filters(seeded):
    assert ids(invoke("runs", "--json"), "runs") == [LATEST, RECENT, OLDER, OLD]
    assert ids(invoke("runs", "--limit", "2", "--json"), "runs") == [LATEST, RECENT]
    assert ids(invoke("runs", "--status", "verified", "--json"), "runs") == [RECENT, OLD]
    assert ids(invoke("runs", "--days", "7", "--json"), "runs") == [LATEST, RECENT]
    table = invoke("runs")
    assert table.exit_code == 0 and LATEST in table.stdout and "teardown_failed" in table.stdout


def test_agents_of_one_run_the_latest_or_all_recent(seeded):
    assert ids(invoke("agents", "--run-id", RECENT, "--json"), "agents") == [RECENT]
    latest = invoke("agents", "--json")
    assert [a["scenario"] for a in json.loads(latest.stdout)["agents"]] == ["scenario-0000", "scenario-0001"]
    assert ids(invoke("agents", "--all", "--json"), "agents") == [LATEST, LATEST, RECENT]
    assert ids(invoke("agents", "--all", "--days", "60", "--json"), "agents") == [LATEST, LATEST, RECENT, OLDER]
    table = invoke("agents", "--run-id", LATEST)
    assert table.exit_code == 0 and "scenario-0001" in table.stdout


def test_metrics_as_json_and_as_tables(seeded):
    result = invoke("metrics", "--days", "90", "--json")
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert (m["runs"], m["finished"], m["succeeded"], m["success_rate"]) == (3, 2, 1, 0.5)
    assert (m["resources_created"], m["resources_cleaned"], m["resources_orphaned"]) == (17, 5, 2)
    assert (m["cost_estimate_usd"], m["scenarios_executed"], m["average_duration_hours"]) == (4.5, 4, 8.0)
    assert m["most_executed"][0] == {"scenario": "s1", "runs": 2}
    assert [r["run_id"] for r in m["last_runs"]] == [LATEST, RECENT, OLDER]
    table = invoke("metrics", "--days", "90")
    assert table.exit_code == 0
    for text in ("success rate", "50% (1 of 2 finished)", "most executed", "s1 (2)", "$4.50", "17 / 5 / 2", OLDER):
        assert text in table.stdout


@pytest.mark.parametrize("args, message", [
    (["runs", "--days", "0"], "--days 0 is out of range"),
    (["runs", "--limit", "0"], "--limit 0 is out of range"),
    (["runs", "--status", "done"], "status 'done' is unknown"),
    (["agents", "--run-id", "yesterday"], "run id 'yesterday' is not valid"),
    (["agents", "--run-id", "20261121t0600z-7f3a", "--all"], "not both"),
    (["metrics", "--days", "-3"], "--days -3 is out of range"),
])
def test_bad_input_is_invalid_input(args, message, tmp_path, monkeypatch):
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", dead_connection_string())  # never reached
    result = invoke(*args)
    assert result.exit_code == 1 and isinstance(result.exception, InvalidInput)
    assert message in str(result.exception)


def test_commands_flush_the_spool_before_reading(seeded, tmp_path):
    down = Ledger.from_config(_config_with(dead_connection_string(), seeded.spool_path, tmp_path), retries=0)
    newest = new_run_id(NOW, "00ff")
    down.upsert_run(make_run(newest, "deploying"))
    down.upsert_agents([AgentRecord(newest, "s1", "scheduled")])
    assert len(seeded.spool_path.read_text().splitlines()) == 2
    result = invoke("runs", "--limit", "1", "--json")
    assert ids(result, "runs") == [newest] and "2 write(s) kept in" in result.stderr
    assert seeded.spool_path.read_text() == ""


def test_an_unreachable_ledger_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", dead_connection_string())
    monkeypatch.setenv("HAYMAKER_LEDGER_SPOOL", str(tmp_path / "spool.jsonl"))
    result = invoke("runs", "--json")
    assert result.exit_code == 1 and isinstance(result.exception, LedgerUnreachable)
    assert "bash scripts/azurite.sh" in str(result.exception) and result.stdout == ""


def _config_with(connection_string, spool, home):
    from haymaker.config import load_config

    return load_config(environ={"HAYMAKER_LEDGER_CONNECTION_STRING": connection_string,
                                "HAYMAKER_LEDGER_SPOOL": str(spool)}, cwd=home, home=home)
