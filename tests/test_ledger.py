"""The ledger against a real Azurite: round trips, keys, metrics, pagination, ETag races, outages."""

from __future__ import annotations

import json
import logging
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from haymaker import ledger as ledger_module
from haymaker.config import load_config
from haymaker.errors import InvalidInput
from haymaker.ledger import (AgentRecord, Ledger, LedgerUnreachable, RunRecord, month_partitions, run_partition,
                             run_row_key)
from haymaker.runspec import check_run_id
from tests.azurite import DEV_KEY, azurite, free_port, fresh_service  # noqa: F401
from tests.conftest import RUN_ID, utc

NOW = utc(2026, 11, 21, 12, 0)


def make_run(run_id: str, status: str = "verified", **changes) -> RunRecord:
    started = check_run_id(run_id)
    fields = dict(environment="dev", trigger="schedule", status=status, started_at=started,
                  expires_at=started + timedelta(hours=8), scenarios=["compute-01-linux-vm-web-server"],
                  duration_hours=8)
    return RunRecord(run_id=run_id, **{**fields, **changes})


def make_agents(run_id: str, count: int) -> list[AgentRecord]:
    return [AgentRecord(run_id=run_id, scenario=f"scenario-{i:04d}", status="started", job_name=f"job-{i}")
            for i in range(count)]


@pytest.fixture
def ledger(azurite, tmp_path):  # noqa: F811 - the fixture imported above
    return Ledger(fresh_service(azurite), tmp_path / "spool.jsonl", retries=1, backoff=0.01)


def dead_ledger(tmp_path) -> Ledger:
    """A ledger whose Azurite is not running: nothing listens on its port."""
    cfg = load_config(environ={"HAYMAKER_LEDGER_CONNECTION_STRING": dead_connection_string(),
                               "HAYMAKER_LEDGER_SPOOL": str(tmp_path / "spool.jsonl")}, cwd=tmp_path, home=tmp_path)
    return Ledger.from_config(cfg, retries=1, backoff=0.01)


def dead_connection_string() -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
            f"TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1")


def partitions_read(monkeypatch, led: Ledger) -> list[str]:
    seen: list[str] = []
    query = led._query_runs

    def spy(partition, *args):
        seen.append(partition)
        return query(partition, *args)

    monkeypatch.setattr(led, "_query_runs", spy)
    return seen


def tables_opened(monkeypatch, led: Ledger) -> list[str]:
    seen: list[str] = []
    open_table = led._table
    monkeypatch.setattr(led, "_table", lambda name: seen.append(name) or open_table(name))
    return seen


def test_keys_make_get_run_a_point_read_and_list_newest_first():
    assert run_partition(RUN_ID) == "202611"
    assert run_row_key(RUN_ID) == f"{999_999_999_999 - 202611210600:012d}-{RUN_ID}"
    newer, older = "20261121t0601z-0000", "20261121t0600z-ffff"
    assert sorted([run_row_key(older), run_row_key(newer)]) == [run_row_key(newer), run_row_key(older)]
    assert month_partitions(NOW, NOW - timedelta(days=90)) == ["202611", "202610", "202609", "202608"]
    assert month_partitions(utc(2027, 1, 5), utc(2026, 12, 1)) == ["202701", "202612"]


def test_run_round_trip_is_an_idempotent_upsert(ledger):
    run = make_run(RUN_ID, "verified", scenarios=["a", "b"], size="small", git_sha="abc", actor="ops",
                   started_at=utc(2026, 11, 21, 6, 0, 12), ended_at=utc(2026, 11, 21, 14, 3),
                   cost_estimate_usd=4.25, resources_created=12, resources_cleaned=11, resources_orphaned=1,
                   deploy_seconds=95.5, detail="1 leftover(s) found")
    ledger.upsert_run(run)
    ledger.upsert_run(run)
    assert ledger.get_run(RUN_ID) == run
    rows = list(ledger._table("runs").list_entities())
    assert [(r["PartitionKey"], r["RowKey"]) for r in rows] == [("202611", run_row_key(RUN_ID))]
    assert json.loads(rows[0]["scenarios"]) == ["a", "b"]
    assert ledger.get_run("20261121t0600z-0000") is None
    assert run.to_dict()["ended_at"] == "2026-11-21T14:03:00Z"


def test_update_run_changes_fields_and_checks_them(ledger, caplog):
    ledger.upsert_run(make_run(RUN_ID, "deploying"))
    updated = ledger.update_run(RUN_ID, status="running", deploy_seconds=42.0, resources_created=6)
    assert updated == ledger.get_run(RUN_ID)
    assert (updated.status, updated.deploy_seconds, updated.resources_created) == ("running", 42.0, 6)
    with pytest.raises(InvalidInput, match="status 'done' is unknown"):
        ledger.update_run(RUN_ID, status="done")
    with pytest.raises(InvalidInput, match="cannot update colour"):
        ledger.update_run(RUN_ID, colour="red")
    with caplog.at_level(logging.WARNING, "haymaker.ledger"):
        assert ledger.update_run("20261121t0600z-0000", status="verified") is None
    assert "not in the ledger" in caplog.text


def test_etag_conflict_the_loser_rereads_and_both_changes_survive(ledger, azurite, tmp_path, monkeypatch):  # noqa: F811
    other = Ledger(TableServiceClient.from_connection_string(azurite.connection_string), tmp_path / "other.jsonl")
    ledger.upsert_run(make_run(RUN_ID, "destroying"))
    open_table = ledger._table

    class RacingTable:
        """Between our read and our write, the other writer updates the same row."""

        def __init__(self, table):
            self.table, self.raced = table, False

        def __getattr__(self, name):
            return getattr(self.table, name)

        def get_entity(self, *args, **kwargs):
            entity = self.table.get_entity(*args, **kwargs)
            if not self.raced:
                self.raced = True
                other.update_run(RUN_ID, resources_cleaned=7)
            return entity

    racing = RacingTable(open_table("runs"))
    monkeypatch.setattr(ledger, "_table", lambda name: racing)
    result = ledger.update_run(RUN_ID, status="verified", ended_at=utc(2026, 11, 21, 14, 0))
    assert ledger.conflicts == 1 and other.conflicts == 0
    stored = other.get_run(RUN_ID)
    assert (stored.status, stored.resources_cleaned, stored.ended_at) == ("verified", 7, utc(2026, 11, 21, 14, 0))
    assert result == stored


def test_agents_round_trip_in_batched_transactions(ledger, monkeypatch):
    batches = []
    upsert = ledger_module._upsert
    monkeypatch.setattr(ledger_module, "_upsert", lambda table, entities: (upsert(table, entities),
                                                                           batches.append(len(entities))))
    old, recent = "20261001t0600z-0001", "20261120t0600z-0002"
    ledger.upsert_agents(make_agents(RUN_ID, 150) + make_agents(old, 3) + make_agents(recent, 2))
    assert sorted(batches) == [2, 3, 50, 100]
    agents = ledger.list_agents(RUN_ID)
    assert [a.scenario for a in agents] == [f"scenario-{i:04d}" for i in range(150)]
    assert agents[0] == make_agents(RUN_ID, 1)[0]
    window = ledger.list_agents(now=NOW, days=30)  # the agents of runs started since 2026-10-22 12:00
    assert [a.run_id for a in window] == [RUN_ID] * 150 + [recent] * 2
    assert ledger.list_agents("20261121t0600z-0000") == []


def test_events_round_trip_in_order_with_secrets_redacted(ledger):
    ledger.add_event(RUN_ID, "audit", {"actor": "ops", "client_secret": "hunter2", "nested": [{"password": "x"}]})
    ledger.add_event(RUN_ID, "teardown", {"outcome": "verified", "log": "x" * 100_000})
    events = ledger.list_events(RUN_ID)
    assert [e["kind"] for e in events] == ["audit", "teardown"]
    assert events[0]["data"] == {"actor": "ops", "client_secret": "[secret]", "nested": [{"password": "[secret]"}]}
    assert events[1]["data"]["log"] == "x" * 100_000  # split over several properties (64 KiB each at most)


def seed_window(led: Ledger) -> None:
    """Runs around the 90-day window before NOW (2026-11-21 12:00; the window opens 2026-08-23 12:00)."""
    def ended(run_id, hours):
        return check_run_id(run_id) + timedelta(hours=hours)

    led.upsert_run(make_run("20261121t0600z-0001", "running", scenarios=["s1", "s2"], resources_created=10,
                            cost_estimate_usd=3.0, deploy_seconds=100.0))
    led.upsert_run(make_run("20261115t0600z-0002", "verified", scenarios=["s1", "s3"], resources_created=8,
                            resources_cleaned=8, cost_estimate_usd=2.5, deploy_seconds=200.0,
                            ended_at=ended("20261115t0600z-0002", 8), truth_coverage=0.9, truth_events=120))
    led.upsert_run(make_run("20261002t1800z-0003", "forced", scenarios=["s1"], resources_created=4,
                            resources_cleaned=3, resources_orphaned=1, cost_estimate_usd=1.25, deploy_seconds=300.0,
                            ended_at=ended("20261002t1800z-0003", 10), truth_coverage=0.7))
    led.upsert_run(make_run("20260901t0000z-0004", "failed", scenarios=["s2", "s4"], resources_created=2,
                            resources_cleaned=2, cost_estimate_usd=0.5, ended_at=ended("20260901t0000z-0004", 0.5)))
    led.upsert_run(make_run("20260823t1200z-0005", "verified", scenarios=["s1"], resources_created=4,
                            resources_cleaned=4, cost_estimate_usd=1.0, ended_at=ended("20260823t1200z-0005", 6.5)))
    led.upsert_run(make_run("20260823t1159z-0006", "verified", scenarios=["s9"], cost_estimate_usd=100.0))
    led.upsert_run(make_run("20260601t0000z-0007", "verified", scenarios=["s9"], cost_estimate_usd=100.0))
    led.upsert_run(make_run("20261121t1201z-0008", "deploying", scenarios=["s9"]))  # after NOW


def test_metrics_over_a_seeded_window(ledger, monkeypatch):
    seed_window(ledger)
    partitions, tables = partitions_read(monkeypatch, ledger), tables_opened(monkeypatch, ledger)
    m = ledger.metrics(90, now=NOW)
    assert sorted(partitions) == ["202608", "202609", "202610", "202611"] and set(tables) == {"runs"}
    assert m == {
        "days": 90, "since": "2026-08-23T12:00:00Z", "until": "2026-11-21T12:00:00Z",
        "runs": 5, "by_status": {"running": 1, "failed": 1, "verified": 2, "forced": 1},
        "finished": 4, "succeeded": 2, "success_rate": 0.5,
        "average_duration_hours": 6.25, "average_deploy_seconds": 200.0,
        "average_coverage": 0.8, "runs_with_answer_key": 2,
        "scenarios_executed": 8,
        "most_executed": [{"scenario": "s1", "runs": 4}, {"scenario": "s2", "runs": 2},
                          {"scenario": "s3", "runs": 1}, {"scenario": "s4", "runs": 1}],
        "resources_created": 28, "resources_cleaned": 17, "resources_orphaned": 1, "cost_estimate_usd": 8.25,
        "last_runs": [{"run_id": run_id, "status": status, "started_at": iso_of(run_id), "scenarios": n,
                       "cost_estimate_usd": cost} for run_id, status, n, cost in [
            ("20261121t0600z-0001", "running", 2, 3.0), ("20261115t0600z-0002", "verified", 2, 2.5),
            ("20261002t1800z-0003", "forced", 1, 1.25), ("20260901t0000z-0004", "failed", 2, 0.5),
            ("20260823t1200z-0005", "verified", 1, 1.0)]],
    }
    week = ledger.metrics(7, now=NOW)
    assert (week["runs"], week["success_rate"], week["cost_estimate_usd"]) == (2, 1.0, 5.5)
    empty = ledger.metrics(7, now=utc(2030, 1, 1))
    assert (empty["runs"], empty["success_rate"], empty["average_duration_hours"]) == (0, None, None)


def iso_of(run_id: str) -> str:
    return f"{check_run_id(run_id):%Y-%m-%dT%H:%M:%SZ}"


def test_list_runs_reads_months_newest_first_and_stops_at_the_limit(ledger, monkeypatch):
    seed_window(ledger)
    everything = ledger.list_runs(now=NOW)
    assert [r.run_id[-4:] for r in everything] == ["0001", "0002", "0003", "0004", "0005", "0006", "0007"]
    partitions = partitions_read(monkeypatch, ledger)
    assert [r.run_id[-4:] for r in ledger.list_runs(limit=2, now=NOW)] == ["0001", "0002"]
    assert partitions == ["202611"]
    partitions.clear()
    assert [r.run_id[-4:] for r in ledger.list_runs(limit=3, now=NOW)] == ["0001", "0002", "0003"]
    assert partitions == ["202611", "202610"]
    assert [r.run_id[-4:] for r in ledger.list_runs(status="verified", now=NOW)] == ["0002", "0005", "0006", "0007"]
    assert [r.run_id[-4:] for r in ledger.list_runs(days=7, now=NOW)] == ["0001", "0002"]
    with pytest.raises(InvalidInput, match="--days 0"):
        ledger.list_runs(days=0)
    with pytest.raises(InvalidInput, match="--limit 0"):
        ledger.list_runs(limit=0)


def test_lists_follow_continuation_tokens_past_one_page(ledger):
    start = utc(2026, 10, 1)
    runs = [make_run(f"{start + timedelta(minutes=i):%Y%m%dt%H%Mz}-{i:04x}") for i in range(1100)]
    ledger.upsert_runs(runs)
    ledger.upsert_agents(make_agents(RUN_ID, 1050))
    listed = ledger.list_runs(days=60, now=NOW)
    assert [r.run_id for r in listed] == [r.run_id for r in reversed(runs)]
    assert len(ledger.list_runs(limit=1050, now=NOW)) == 1050
    assert len(ledger.list_agents(RUN_ID)) == 1050
    assert ledger.metrics(60, now=NOW)["runs"] == 1100


def test_outage_spools_writes_and_flush_lands_them(ledger, azurite, caplog):  # noqa: F811
    run = make_run(RUN_ID, "deploying")
    azurite.stop()
    try:
        with caplog.at_level(logging.DEBUG):
            ledger.upsert_run(run)  # none of these raise: a ledger outage never fails a run
            updated = ledger.update_run(RUN_ID, status="destroying", detail="az said: AccountKey=abc123;x")
            ledger.upsert_agents(make_agents(RUN_ID, 2))
            ledger.add_event(RUN_ID, "audit", {"actor": "ops", "client_secret": "hunter2"})
            with pytest.raises(LedgerUnreachable, match="start Azurite with `bash scripts/azurite.sh`"):
                ledger.get_run(RUN_ID)
    finally:
        azurite.start()  # in memory: it comes back empty
    assert (updated.status, updated.scenarios) == ("destroying", run.scenarios)
    spool = ledger.spool_path.read_text()
    assert len(spool.splitlines()) == 5
    assert stat.S_IMODE(ledger.spool_path.stat().st_mode) == 0o600
    for secret in ("hunter2", "abc123", DEV_KEY):
        assert secret not in spool and secret not in caplog.text
    assert "kept in" in caplog.text

    assert Ledger(fresh_service(azurite), ledger.spool_path).flush_spool() == 5
    assert ledger.spool_path.read_text() == "" and ledger.flush_spool() == 0
    stored = ledger.get_run(RUN_ID)
    assert (stored.status, stored.detail) == ("destroying", "az said: AccountKey=[secret];x")
    assert len(ledger.list_agents(RUN_ID)) == 2
    assert ledger.list_events(RUN_ID)[0]["data"] == {"actor": "ops", "client_secret": "[secret]"}


def test_the_next_write_replays_the_spool_first(ledger, tmp_path):
    down = dead_ledger(tmp_path)
    down.spool_path = ledger.spool_path
    down.upsert_run(make_run(RUN_ID, "deploying"))
    down.upsert_run(make_run("20261121t0700z-0002", "deploying"))
    assert len(ledger.spool_path.read_text().splitlines()) == 2
    assert ledger.update_run(RUN_ID, status="running").status == "running"  # its upsert landed first
    assert [r.status for r in ledger.list_runs(now=NOW + timedelta(hours=1))] == ["deploying", "running"]
    assert ledger.spool_path.read_text() == ""


def test_reads_during_an_outage_say_how_to_fix_it(tmp_path):
    down = dead_ledger(tmp_path)
    with pytest.raises(LedgerUnreachable) as e:
        down.list_runs(limit=5)
    message = str(e.value)
    assert "unreachable" in message and "HAYMAKER_LEDGER_CONNECTION_STRING" in message and DEV_KEY not in message


def test_from_config_picks_connection_string_endpoint_or_azurite(tmp_path):
    def ledger_for(**environ):
        return Ledger.from_config(load_config(environ=environ, cwd=tmp_path, home=tmp_path))

    local = ledger_for()
    assert local.where == "http://127.0.0.1:10002/devstoreaccount1"
    assert local.spool_path == Path.home() / ".haymaker" / "ledger-spool.jsonl"
    conn = dead_connection_string()
    assert ledger_for(HAYMAKER_LEDGER_CONNECTION_STRING=conn).where == conn.split("TableEndpoint=")[1]
    azure = ledger_for(HAYMAKER_LEDGER_ENDPOINT="https://haymakerdev.table.core.windows.net",
                       HAYMAKER_LEDGER_SPOOL=str(tmp_path / "s.jsonl"))
    assert azure.where == "https://haymakerdev.table.core.windows.net"
    assert type(azure._service.credential).__name__ == "DefaultAzureCredential"
    assert azure.spool_path == tmp_path / "s.jsonl"
    with pytest.raises(InvalidInput, match="is not a Table Storage connection string") as e:
        ledger_for(HAYMAKER_LEDGER_CONNECTION_STRING="AccountKey=s3cr3t")
    assert "s3cr3t" not in str(e.value)
