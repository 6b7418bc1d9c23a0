"""`haymaker truth` end to end: the ledger and the reports container on Azurite, the workspace on the Log
Analytics stand-in, the real clients, the operator's environment as a shell would have it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from azure.storage.blob import BlobServiceClient

from haymaker.cli import main
from haymaker.ledger import AgentRecord, Ledger
from haymaker.runspec import check_run_id, new_run_id
from tests.azurite import azurite, fresh_service  # noqa: F401
from tests.fakes.runlog import RunLog, agent
from tests.test_ledger import make_run

VM = "compute-01-linux-vm-web-server"
NOW = datetime.now(timezone.utc)
RUN = new_run_id(NOW - timedelta(hours=12), "7f3e")
START = check_run_id(RUN) + timedelta(minutes=15)


@pytest.fixture
def invoke(capsys):
    def run(*args: str):
        code = main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(exit_code=code, stdout=out.out, stderr=out.err)

    return run


@pytest.fixture
def blobs(azurite):  # noqa: F811
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("reports")
    if container.exists():
        container.delete_container()
    return container


@pytest.fixture
def ledger(azurite, blobs, fake_cloud, tmp_path, monkeypatch):  # noqa: F811
    """An empty ledger, and the environment of a GitHub Actions job pointed at it, the stand-ins and the
    reports container."""
    for name, value in {**fake_cloud.github_actions_env(), **fake_cloud.haymaker_env(),
                        "HAYMAKER_LEDGER_CONNECTION_STRING": azurite.connection_string,
                        "HAYMAKER_LEDGER_SPOOL": str(tmp_path / "spool.jsonl"), "HOME": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return Ledger(fresh_service(azurite), tmp_path / "spool.jsonl")


@pytest.fixture
def finished_run(ledger, fake_cloud):
    """A run that ended hours ago: in the ledger with its agent, its lines and records in the workspace."""
    vm = agent(RUN, VM)
    ledger.upsert_run(make_run(RUN, "verified", scenarios=[VM], ended_at=check_run_id(RUN) + timedelta(hours=8)))
    ledger.upsert_agents([AgentRecord(RUN, VM, "started", vm.group, vm.client_id, vm.object_id, vm.job)])
    log = RunLog(fake_cloud.log_analytics, RUN)
    log.line(vm, START, "agent-start")
    t = START
    for step, op, ok in [("create-vnet", "Microsoft.Network/virtualNetworks/write", True),
                         ("create-nsg", "Microsoft.Network/networkSecurityGroups/write", True),
                         ("allow-http", None, True)]:  # its record never arrived
        if op:
            log.request(vm, t + timedelta(seconds=2), op)
        t = log.step(vm, "deploy", step, t, 10, ok=ok) + timedelta(seconds=1)
    log.request(None, START - timedelta(minutes=4), "Microsoft.App/jobs/write")  # the deployer's
    return ledger


def test_the_answer_key_is_printed_stored_and_summarised(finished_run, blobs, invoke):
    result = invoke("truth", RUN, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    recs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["step"], r["matched"], r["missing"]) for r in recs] == [
        ("create-vnet", ["Microsoft.Network/virtualNetworks/write"], []),
        ("create-nsg", ["Microsoft.Network/networkSecurityGroups/write"], []),
        ("allow-http", [], ["Microsoft.Network/networkSecurityGroups/securityRules/write"])]
    assert f"run {RUN}: coverage 67% (2 of 3 expected operations), 4 Activity Log records by its agents, " \
           "2 platform" in result.stderr
    # Kept in the reports container, so it outlives the workspace's retention.
    stored = {b.name: blobs.download_blob(b.name).readall().decode() for b in blobs.list_blobs()}
    assert sorted(stored) == [f"{RUN}/summary.json", f"{RUN}/truth.jsonl", f"{RUN}/truth.md"]
    assert stored[f"{RUN}/truth.jsonl"] == result.stdout
    assert json.loads(stored[f"{RUN}/summary.json"])["coverage"] == 0.6667
    assert stored[f"{RUN}/truth.md"].startswith(f"# Answer key: run {RUN}")
    assert blobs.get_blob_client(f"{RUN}/truth.md").get_blob_properties().content_settings.content_type == \
        "text/markdown; charset=utf-8"
    # Its summary in the ledger; metrics average it over recent runs.
    run = finished_run.get_run(RUN)
    assert (run.truth_coverage, run.truth_events) == (0.6667, 4)
    (event,) = [e for e in finished_run.list_events(RUN) if e["kind"] == "truth"]
    assert event["data"]["matched"] == 2 and event["data"]["complete"] is True
    metrics = invoke("metrics", "--json")
    assert json.loads(metrics.stdout)["average_coverage"] == 0.6667
    assert "answer key coverage" in invoke("metrics").stdout


def test_csv_to_a_file_and_markdown_to_stdout(finished_run, invoke, tmp_path):
    result = invoke("truth", RUN, "--format", "csv", "--output", str(tmp_path / "key.csv"))
    assert result.exit_code == 0 and result.stdout == "" and f"wrote {tmp_path / 'key.csv'}" in result.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "key.csv").read_text())))
    assert [r["step"] for r in rows] == ["create-vnet", "create-nsg", "allow-http"]
    markdown = invoke("truth", RUN)
    assert markdown.exit_code == 0 and markdown.stdout.startswith(f"# Answer key: run {RUN}")
    assert "| Microsoft.App/jobs/write | Succeeded |" in markdown.stdout  # the deployer, as platform activity


def test_bad_input_is_refused_before_anything_is_read(finished_run, invoke, fake_cloud):
    unknown = invoke("truth", RUN, "--format", "xml")
    assert unknown.exit_code == 1 and "--format 'xml' is unknown: use one of jsonl, csv, markdown" in unknown.stderr
    missing = invoke("truth", new_run_id(NOW - timedelta(days=1), "dead"))
    assert missing.exit_code == 1 and "is not in the ledger" in missing.stderr
    assert invoke("truth", "run-1").exit_code == 1
    assert fake_cloud.log_analytics.queries == []


def test_an_unreachable_reports_container_fails_after_the_report_is_written(finished_run, azurite, invoke,  # noqa: F811
                                                                            tmp_path, monkeypatch):
    dead = azurite.connection_string.replace(azurite.blob_endpoint, "http://127.0.0.1:9/devstoreaccount1")
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", dead)
    result = invoke("truth", RUN, "--output", str(tmp_path / "key.md"))
    assert result.exit_code == 1 and "cannot reach http://127.0.0.1:9/devstoreaccount1/reports" in result.stderr
    assert (tmp_path / "key.md").read_text().startswith(f"# Answer key: run {RUN}")  # nothing is lost


def test_in_azure_the_reports_container_is_the_one_beside_the_ledger(tmp_path):
    from haymaker.config import load_config
    from haymaker.errors import InvalidInput
    from haymaker.reports import ReportStore

    environ = {"HAYMAKER_LEDGER_ENDPOINT": "https://hmdevledger1a2b3c.table.core.windows.net/"}
    config = load_config(environ=environ, cwd=tmp_path, home=tmp_path)
    assert ReportStore.from_config(config, env={}).where == "https://hmdevledger1a2b3c.blob.core.windows.net/reports"
    explicit = load_config(environ={**environ, "HAYMAKER_REPORTS_CONTAINER_URL": "https://other.blob.core.windows.net/"
                                    "reports"}, cwd=tmp_path, home=tmp_path)
    assert ReportStore.from_config(explicit, env={}).where == "https://other.blob.core.windows.net/reports"
    odd = load_config(environ={"HAYMAKER_LEDGER_ENDPOINT": "https://ledger.example.net"}, cwd=tmp_path, home=tmp_path)
    with pytest.raises(InvalidInput, match="set HAYMAKER_REPORTS_CONTAINER_URL"):
        ReportStore.from_config(odd, env={})
