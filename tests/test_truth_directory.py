"""The directory plane of the answer key: `plane: graph` steps expect the Entra audit activities they declare,
and `haymaker truth` finds them in the workspace's AuditLogs table, written in the shape Entra writes them
(tests/fakes/loganalytics.py), by the agent's identity and the step's window. The catalog here is a fixture
scenario with steps on both planes (tests/fixtures/scenarios), so nothing depends on the catalog's content."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from haymaker import truthreport
from haymaker.cloud import azure_credential
from haymaker.ledger import AgentRecord, RunRecord
from haymaker.loganalytics import LogAnalytics
from haymaker.truth import build
from scenarios.catalog import Catalog, check_file
from tests.fakes.cloud import WORKSPACE_RESOURCE_ID
from tests.fakes.runlog import RunLog, agent
from tests.test_truth_cli import blobs, invoke  # noqa: F401 - fixtures
from tests.test_truth_cli import ledger as truth_env  # noqa: F401 - the ledger on Azurite and the job's environment

FIXTURE = Path(__file__).parent / "fixtures" / "scenarios" / "identity-91-directory-fixture.yaml"
RUN = "20261124t0600z-7f3e"
OTHER = "20261124t0400z-0b0b"
T0 = datetime(2026, 11, 24, 6, 15, tzinfo=timezone.utc)
AFTER = T0 + timedelta(hours=10)
CERTS = "Update application - Certificates and secrets management"


@pytest.fixture(scope="module")
def scenario():
    found, problems = check_file(FIXTURE)
    assert problems == []
    return found


class Ledger:
    def __init__(self, scenario):
        self.run = RunRecord(run_id=RUN, environment="dev", trigger="schedule", status="verified",
                             started_at=T0 - timedelta(minutes=15), expires_at=T0 + timedelta(hours=8),
                             scenarios=[scenario.name], duration_hours=8)
        self.who = agent(RUN, scenario.name)  # the borrowed identity's client id and object id

    def get_run(self, run_id):
        return self.run if run_id == RUN else None

    def list_agents(self, run_id):
        w = self.who
        return [AgentRecord(run_id, w.scenario, "started", w.group, w.client_id, w.object_id, w.job)]


@pytest.fixture
def la(fake_cloud):
    return LogAnalytics(WORKSPACE_RESOURCE_ID, azure_credential(fake_cloud.endpoints(), fake_cloud.github_actions_env()),
                        fake_cloud.log_analytics.base_url)


def key_of(la, scenario, catalog=None):
    key = build(RUN, ledger=Ledger(scenario), logs=la, catalog=catalog or Catalog({scenario.name: scenario}),
                now=AFTER)
    recs = truthreport.records(key)
    return key, recs, truthreport.summary(key, recs)


def audit(fake_cloud, who, at, activity, name, kind="Application", **fields):
    """What Entra writes when ``who`` (an application) does ``activity`` to the object ``name``."""
    return fake_cloud.log_analytics.add_audit(at=at, activity=activity, app_id=who.client_id,
                                              service_principal_id=who.object_id, app_name=f"haymaker-{who.scenario}",
                                              target_type=kind, target_name=name, **fields)


def a_day(fake_cloud, scenario, *, skip=(), run=RUN, t0=T0):
    """The fixture scenario's steps, each with what it leaves: its ARM requests, or Entra's audit records
    (20 s into the step, Entra's clock). ``skip``: steps whose records never come."""
    log, who = RunLog(fake_cloud.log_analytics, run), agent(run, scenario.name)
    app = f"haymaker-{run}-fixture"
    t = t0
    for phase, steps in scenario.phases.items():
        for step in steps:
            if step.name not in skip:
                for op in step.expect:
                    log.request(who, t + timedelta(seconds=5), op)
                for activity in step.audit:
                    spelled = "Update application \u2013 Certificates and secrets management " if activity == CERTS \
                        else activity  # as the logs spell it, not as the reference does
                    audit(fake_cloud, who, t + timedelta(seconds=20), spelled, app,
                          "ServicePrincipal" if "service principal" in activity else "Application")
            t = log.step(who, phase, step.name, t, 40) + timedelta(minutes=20)
    return who, app


def test_directory_steps_are_matched_with_their_audit_records_and_covered_per_plane(fake_cloud, la, scenario):
    who, app = a_day(fake_cloud, scenario, skip={"create-principal"})
    key, recs, doc = key_of(la, scenario)
    by = {r["step"]: r for r in recs}
    assert by["register-app"]["plane"] == "graph" and by["create-notes-storage"]["plane"] == "arm"
    assert by["register-app"]["matched"] == ["Add application"]
    assert by["create-principal"]["missing"] == ["Add service principal"]
    assert by["rotate-certificate"]["matched"] == [CERTS]  # the en dash and the trailing space do not count
    assert [o["plane"] for o in by["delete-app"]["observed"]] == ["graph"]
    assert by["delete-app"]["observed"][0]["resource_id"] == f"Application {app}"
    assert by["show-app"]["plane"] == "graph"  # a read declares no plane; its command says where it goes
    assert doc["planes"]["arm"] == {
        "source": "AzureActivity", "observed": True, "steps": 3, "expected": 3, "matched": 3, "missing": 0,
        "unexpected": 0, "coverage": 1.0, "events": 6}
    assert doc["planes"]["graph"] == {
        "source": "AuditLogs", "observed": True, "steps": 7, "expected": 5, "matched": 4, "missing": 1,
        "unexpected": 0, "coverage": 0.8, "events": 4}
    assert (doc["expected"], doc["matched"], doc["coverage"], doc["audit_events"]) == (8, 7, 0.875, 4)
    (s,) = doc["scenarios"]
    assert s["planes"]["graph"]["coverage"] == 0.8 and s["audit_events"] == 4
    query = next(q["query"] for q in fake_cloud.log_analytics.queries if q["query"].startswith("AuditLogs"))
    assert who.client_id in query and who.object_id in query
    # The same, in each format.
    rows = list(csv.DictReader(io.StringIO(truthreport.to_csv(recs))))
    assert {r["step"]: r["plane"] for r in rows}["annotate-app"] == "graph"
    md = truthreport.to_markdown(recs, doc)
    assert "| ARM plane (Activity Log) | 100% (3 of 3 operations) |" in md
    assert "| directory plane (Entra audit log) | 80% (4 of 5 audit activities) |" in md
    assert "| deploy | create-principal (directory) | ok | — | Add service principal | — |" in md


def test_what_others_did_is_not_the_agents(fake_cloud, la, scenario):
    who, app = a_day(fake_cloud, scenario)
    step = T0 + timedelta(minutes=21, seconds=10)  # during register-app
    la_ = fake_cloud.log_analytics
    la_.add_audit(at=step, activity="Add member to group", user="admin@contoso.example", target_type="Group",
                  target_name="haymaker-ops")  # a person, at the same moment
    stranger = agent(RUN, "another-scenario")  # another identity
    audit(fake_cloud, stranger, step, "Delete application", f"haymaker-{RUN}-other")
    audit(fake_cloud, who, step, "Delete application", f"haymaker-{OTHER}-fixture")  # the borrowed identity, for another run
    _, recs, doc = key_of(la, scenario)
    by = {r["step"]: r for r in recs}
    assert [o["operation"] for o in by["register-app"]["observed"]] == ["Add application"]
    assert by["register-app"]["unexpected"] == []
    assert doc["planes"]["graph"]["matched"] == 5 and doc["audit_events"] == 5
    assert "1 Entra audit record(s) of a borrowed identity name another run's objects: left to that run" in doc["notes"]


def test_an_undeclared_directory_change_is_unexpected(fake_cloud, la, scenario):
    who, app = a_day(fake_cloud, scenario)
    audit(fake_cloud, who, T0 + timedelta(minutes=21, seconds=30), "Add owner to application", app)
    _, recs, doc = key_of(la, scenario)
    by = {r["step"]: r for r in recs}
    assert by["register-app"]["unexpected"] == ["Add owner to application"]
    assert doc["planes"]["graph"]["unexpected"] == 1 and doc["planes"]["graph"]["coverage"] == 1.0


def test_without_audit_logs_in_the_workspace_the_directory_plane_is_not_observed(fake_cloud, la, scenario):
    a_day(fake_cloud, scenario)
    fake_cloud.log_analytics.audit_logs = False  # nobody did the one-time step: the table does not exist
    _, recs, doc = key_of(la, scenario)
    graph = doc["planes"]["graph"]
    assert (graph["observed"], graph["expected"], graph["missing"], graph["coverage"]) == (False, 5, 0, None)
    assert (doc["expected"], doc["matched"], doc["coverage"]) == (3, 3, 1.0)  # the ARM plane alone
    register = next(r for r in recs if r["step"] == "register-app")
    assert register["plane_observed"] is False and register["missing"] == [] and register["expected"]
    assert any("no AuditLogs table" in n and "docs/operations.md" in n and "5 expected audit activities" in n
               for n in doc["notes"])
    md = truthreport.to_markdown(recs, doc)
    assert "| directory plane (Entra audit log) | not observed (no AuditLogs table in the workspace; 5 audit " \
           "activities expected) |" in md


def test_a_run_without_directory_steps_reads_no_audit_log(fake_cloud, la, scenario):
    arm_only = dataclasses.replace(scenario, phases={p: tuple(s for s in steps if s.plane != "graph")
                                                     for p, steps in scenario.phases.items()})
    a_day(fake_cloud, arm_only)
    _, _, doc = key_of(la, arm_only)
    assert not any(q["query"].startswith("AuditLogs") for q in fake_cloud.log_analytics.queries)
    assert doc["planes"]["graph"]["observed"] is None and doc["coverage"] == 1.0
    assert json.dumps(doc)  # the summary is plain JSON


def test_haymaker_truth_prints_and_keeps_the_coverage_of_each_plane(truth_env, blobs, invoke, fake_cloud, scenario,
                                                                    monkeypatch):
    from haymaker.runspec import check_run_id, new_run_id
    from tests.test_ledger import make_run

    monkeypatch.setattr("scenarios.catalog.load_catalog", lambda *a, **k: Catalog({scenario.name: scenario}))
    run = new_run_id(datetime.now(timezone.utc) - timedelta(hours=12), "d1e0")
    who = agent(run, scenario.name)
    truth_env.upsert_run(make_run(run, "verified", scenarios=[scenario.name],
                                  ended_at=check_run_id(run) + timedelta(hours=8)))
    truth_env.upsert_agents([AgentRecord(run, scenario.name, "started", who.group, who.client_id, who.object_id,
                                         who.job)])
    a_day(fake_cloud, scenario, run=run, t0=check_run_id(run) + timedelta(minutes=15), skip={"delete-app"})
    result = invoke("truth", run)
    assert result.exit_code == 0, result.stderr
    assert "  ARM plane (Activity Log): 100% (3 of 3 operations)" in result.stderr
    assert "  directory plane (Entra audit log): 80% (4 of 5 audit activities)" in result.stderr
    summary = json.loads(blobs.download_blob(f"{run}/summary.json").readall())
    assert summary["planes"]["graph"]["coverage"] == 0.8 and summary["coverage"] == 0.875
    assert truth_env.get_run(run).truth_coverage == 0.875
