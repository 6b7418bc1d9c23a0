"""Every table at 80 and 120 columns: what a user copies (run ids, statuses, scenario names, keys,
variables) is never cut; other columns give way; a pipe gets tab-separated rows with everything."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from haymaker.cli import config as cli_config
from haymaker.cli import ledger as cli_ledger
from haymaker.cli import main
from haymaker.cli import scenarios as cli_scenarios
from haymaker.config import KEYS
from haymaker.ledger import STATUSES, AgentRecord, Ledger
from haymaker.runspec import new_run_id
from tests.azurite import fresh_service
from tests.test_ledger import make_run

LONGEST_STATUS = max(STATUSES, key=len)


def test_fit_shortens_then_drops_the_named_columns_only():
    from haymaker.tables import fit, lines

    rows = [{"id": "x" * 30, "title": "t" * 40, "extra": "e" * 20}]
    assert fit(["id", "title", "extra"], rows, 200) == {"id": 30, "title": 40, "extra": 20}
    # In the order named: the extra column goes, then the title shortens; the id is never touched.
    give_way = [("extra", 0), ("title", 12)]
    assert fit(["id", "title", "extra"], rows, 80, give_way) == {"id": 30, "title": 40}
    assert fit(["id", "title", "extra"], rows, 60, give_way) == {"id": 30, "title": 28}
    assert fit(["id", "title", "extra"], rows, 20, give_way) == {"id": 30, "title": 12}
    # The title shortened first gets back the room the extra column leaves when that goes too.
    assert fit(["id", "title", "extra"], rows, 70, [("title", 30), ("extra", 0)]) == {"id": 30, "title": 38}
    header, rule, row = lines(["id", "title", "extra"], rows, 60, give_way)
    assert row == "x" * 30 + "  " + "t" * 27 + "…" and len(rule) == 60


def test_tsv_keeps_every_column_whole():
    from haymaker.tables import tsv

    assert tsv(["a", "b"], [{"a": "x\ty", "b": "two\nlines"}]) == ["x y\ttwo lines"]


def terminal(monkeypatch, module, width: int) -> io.StringIO:
    """The command's stdout as a terminal of ``width`` columns."""
    buffer = io.StringIO()
    monkeypatch.setattr(module, "out", Console(file=buffer, width=width, force_terminal=True, color_system=None,
                                               legacy_windows=False))
    return buffer


@pytest.fixture
def ledger_env(azurite, tmp_path, monkeypatch):
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("HAYMAKER_LEDGER_SPOOL", str(tmp_path / "spool.jsonl"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return Ledger(fresh_service(azurite), tmp_path / "spool.jsonl")


def long_scenario(i: int) -> str:
    return f"networking-{i:02d}-a-scenario-name-as-long-as-names-get"  # 48 characters


@pytest.mark.parametrize("width", [80, 120])
def test_runs_never_cut_a_run_id_or_a_status(ledger_env, monkeypatch, width):
    ids = [new_run_id(datetime.now(timezone.utc) - timedelta(hours=h), f"{h:04x}") for h in (1, 2)]
    for run_id, status in zip(ids, (LONGEST_STATUS, "running")):
        ledger_env.upsert_run(make_run(run_id, status, trigger="dispatch", environment="staging",
                                       resources_created=123, resources_cleaned=120, resources_orphaned=3))
    screen = terminal(monkeypatch, cli_ledger, width)
    assert main(["runs"]) == 0
    shown = screen.getvalue().splitlines()
    assert max(map(len, shown)) <= width
    for run_id, status in zip(ids, (LONGEST_STATUS, "running")):
        row = next(line for line in shown if line.startswith(run_id))
        assert row.split()[:2] == [run_id, status] and "…" not in row


@pytest.mark.parametrize("width", [80, 120])
def test_agents_never_cut_a_scenario_or_a_status(ledger_env, monkeypatch, width):
    run_id = new_run_id()
    ledger_env.upsert_run(make_run(run_id, "running"))
    ledger_env.upsert_agents([AgentRecord(run_id=run_id, scenario=long_scenario(i), status=LONGEST_STATUS,
                                          resource_group=f"haymaker-{run_id}-{long_scenario(i)}",
                                          job_name=f"hm-networking-{i:02d}-a-scenario-9f8e7d6c") for i in range(3)])
    screen = terminal(monkeypatch, cli_ledger, width)
    assert main(["agents", "--run-id", run_id]) == 0
    shown = screen.getvalue().splitlines()
    assert shown[0] == f"3 agent(s) of run {run_id}"  # the run id once, in the title
    for i in range(3):
        row = next(line for line in shown if line.startswith(long_scenario(i)))
        assert row.split()[:2] == [long_scenario(i), LONGEST_STATUS] and "…" not in row
    assert max(map(len, shown)) <= width
    screen = terminal(monkeypatch, cli_ledger, width)
    assert main(["agents", "--all"]) == 0
    assert all(line.split()[:3] == [run_id, long_scenario(i), LONGEST_STATUS]
               for i, line in enumerate(l for l in screen.getvalue().splitlines() if l.startswith(run_id)))


def test_piped_runs_and_agents_are_tab_separated_rows(ledger_env, capsys):
    run_id = new_run_id()
    ledger_env.upsert_run(make_run(run_id, LONGEST_STATUS))
    ledger_env.upsert_agents([AgentRecord(run_id=run_id, scenario=long_scenario(0), status="started",
                                          resource_group="rg", job_name="job")])
    assert main(["runs"]) == 0
    (row,) = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert row[:3] == [run_id, LONGEST_STATUS, "dev"] and len(row) == 9  # every column
    assert main(["agents", "--run-id", run_id]) == 0
    assert capsys.readouterr().out == f"{run_id}\t{long_scenario(0)}\tstarted\trg\tjob\n"


@pytest.mark.parametrize("width", [80, 120])
def test_scenarios_list_never_cuts_a_name_or_an_area(catalog, monkeypatch, width):
    screen = terminal(monkeypatch, cli_scenarios, width)
    assert main(["scenarios", "list"]) == 0
    shown = screen.getvalue().splitlines()
    for scenario in catalog.scenarios.values():
        row = next(line for line in shown if line.startswith(f"{scenario.name} "))
        assert row.split()[1] == scenario.area
    longest = max(len(n) for n in catalog.names())
    assert max(map(len, shown)) <= max(width, longest + 30)


@pytest.mark.parametrize("width", [80, 120])
def test_config_list_never_cuts_a_key_or_a_variable(tmp_path, monkeypatch, capsys, width):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", "AccountName=a;AccountKey=secret")
    monkeypatch.setenv("HAYMAKER_LOG_ANALYTICS_WORKSPACE", "/subscriptions/s/resourceGroups/g/providers/"
                                                           "Microsoft.OperationalInsights/workspaces/w")
    screen = terminal(monkeypatch, cli_config, width)
    assert main(["config", "list"]) == 0
    shown = screen.getvalue().splitlines()
    assert max(map(len, shown)) <= width
    for key in KEYS:
        row = next(line for line in shown if line.startswith(f"{key.name} "))
        assert row.split()[-1] == key.env
    workspace = next(line for line in shown if line.startswith("log_analytics_workspace "))
    assert "…" in workspace  # the ARM id is longer than any value column here, so it says where to get it
    assert "a value ending in … is cut to fit: `haymaker config get KEY` prints it whole" in capsys.readouterr().err


def test_config_list_piped_is_every_value_whole(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    workspace = "/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w"
    monkeypatch.setenv("HAYMAKER_LOG_ANALYTICS_WORKSPACE", workspace)
    assert main(["config", "list"]) == 0
    rows = {r[0]: r for r in (line.split("\t") for line in capsys.readouterr().out.splitlines())}
    assert rows["log_analytics_workspace"] == ["log_analytics_workspace", workspace, "env",
                                               "HAYMAKER_LOG_ANALYTICS_WORKSPACE"]
    assert set(rows) == {k.name for k in KEYS}
