"""Lifecycle decisions against in-memory stand-ins for the stack driver, Azure and the ledger."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from haymaker.azure import Leftover, Survey
from haymaker.driver import RunStack, StackError, StackLocked
from haymaker.errors import InvalidInput, Refused
from haymaker.lifecycle import (
    Clock,
    Lifecycle,
    RunFailed,
    check_account,
    check_on_demand_limit,
    expiry_of,
    live_on_demand,
    select_expired,
    verification_outcome,
)
from haymaker.retry import Backoff, classify
from haymaker.runspec import RunSpec

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def stack(run_id, expires=None, trigger="schedule", env="dev"):
    tags = {"haymaker:trigger": trigger, "haymaker:env": env}
    if expires is not None:
        tags["haymaker:expires"] = expires
    return RunStack(f"run-{run_id}", tags)


# --- retry classification over real error texts --------------------------------------------------------

@pytest.mark.parametrize("text, kind", [
    ("Status=429 Code=\"TooManyRequests\" Message=\"Rate limit exceeded\"", "transient"),
    ("azure-native:app:Job: Code=\"InternalServerError\" Message=\"Encountered an internal server error.\"", "transient"),
    ("Status=503 ServiceUnavailable", "transient"),
    ("Code=\"AnotherOperationInProgress\" Message=\"Another operation on this or dependent resource is in progress.\"", "transient"),
    ("Code=\"PrincipalNotFound\" Message=\"Principal 3f1e... does not exist in the directory 72f9....\"", "transient"),
    ("error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end", "transient"),
    ("conflict: Another update is currently in progress.", "transient"),
    ("Code=\"AuthorizationFailed\" Message=\"The client does not have authorization to perform action\"", "logic"),
    ("Code=\"QuotaExceeded\" Message=\"Operation could not be completed as it results in exceeding approved quota\"", "logic"),
    ("Code=\"InvalidTemplate\" Message=\"Deployment template validation failed\"", "logic"),
    ("error: preview failed: 1 mandatory policy violation", "logic"),
    ("Code=\"RequestDisallowedByPolicy\" Message=\"Resource was disallowed by policy.\"", "logic"),
    ("Code=\"LocationNotAvailableForResourceType\"", "logic"),
    ("something nobody has seen before", "logic"),
])
def test_classify(text, kind):
    assert classify(text) == kind


# --- expiry and limits ---------------------------------------------------------------------------------

def test_expiry_from_tag_and_fallback_from_run_id():
    assert expiry_of(stack("20261121t0600z-7f3a", "2026-11-21T14:00:00Z")) == datetime(2026, 11, 21, 14, tzinfo=timezone.utc)
    # without a tag: the latest a run of that id could live (10 h + 30 min)
    assert expiry_of(stack("20261121t0600z-7f3a")) == datetime(2026, 11, 21, 16, 30, tzinfo=timezone.utc)
    assert expiry_of(stack("20261121t0600z-7f3a", "garbage")) == datetime(2026, 11, 21, 16, 30, tzinfo=timezone.utc)


def test_select_expired():
    stacks = [stack("20261121t0600z-0001", "2026-11-21T11:59:00Z"), stack("20261121t0600z-0002", "2026-11-21T12:01:00Z"),
              stack("20261120t0600z-0003"), stack("20261121t0600z-0004")]
    assert [s.name for s in select_expired(stacks, NOW)] == ["run-20261120t0600z-0003", "run-20261121t0600z-0001"]


def test_on_demand_limit():
    live = [stack(f"20261121t0600z-000{i}", "2026-11-21T14:00:00Z", "dispatch") for i in range(3)]
    expired = [stack("20261121t0500z-0009", "2026-11-21T11:00:00Z", "dispatch")]
    scheduled = [stack("20261121t0600z-0010", "2026-11-21T14:00:00Z", "schedule")]
    assert live_on_demand(live + expired + scheduled, NOW) == 3
    spec = RunSpec(run_id="20261121t1200z-aaaa", environment="dev", trigger="dispatch", scenarios=("a",))
    with pytest.raises(Refused, match="3 on-demand runs are live and at most 3 may be"):
        check_on_demand_limit(spec, live, NOW, 3)
    check_on_demand_limit(spec, live[:2] + expired, NOW, 3)
    scheduled_spec = RunSpec(run_id="20261121t1200z-aaaa", environment="dev", trigger="schedule", scenarios=("a",))
    check_on_demand_limit(scheduled_spec, live, NOW, 3)  # scheduled runs are not capped here


class FakeAzure:
    """The lifecycle's view of Azure, in memory: for the decisions above the adapter. The adapter itself
    is tested with the real SDKs against local stand-ins (tests/test_azure_boundary.py)."""

    def __init__(self, tenant="tenant-a", leftovers=None, undeletable=(), executions=None, soft=None, suspicious=()):
        self.tenant = tenant
        self.leftovers = list(leftovers or [])
        self.soft = list(soft or [])
        self.suspicious = list(suspicious)
        self.undeletable = set(undeletable)
        self.executions = executions or {}
        self.calls = []

    def subscription_tenant(self):
        self.calls.append("subscription_tenant")
        return self.tenant

    def caller_ids(self):
        return frozenset({"deployer"})

    def survey(self, proof):
        return Survey([x for x in self.leftovers if proof.run_id in x.name],
                      [x for x in self.suspicious if proof.run_id in x.name])

    def soft_deleted(self, proof):
        return Survey([x for x in self.soft if proof.run_id in x.name])

    def exists(self, item):
        return item in self.leftovers or item in self.soft

    def operation(self, item):
        return "", ""

    def delete(self, item):
        self.calls.append(("delete", item.id))
        if item.id in self.undeletable:
            raise StackError("Code=\"Conflict\" Message=\"resource is being deleted\" in progress")
        if item.kind in ("application", "service_principal", "group"):  # the directory keeps it, deleted
            self.soft.append(Leftover(f"deleted_{item.kind}", item.id, item.name))
        self.leftovers = [x for x in self.leftovers if x.id != item.id and not x.id.startswith(item.id + "/")]
        self.soft = [x for x in self.soft if x.id != item.id or x.kind != item.kind]

    def role_definitions_of(self, object_id):
        return ["/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
                "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/f58310d9-a9f6-439a-9e8d-f62e7b41a168"]

    def resource_groups(self):
        return []

    def job_executions(self, rg, job):
        return self.executions.get(job, [])

    def start_job(self, rg, job):
        self.calls.append(("start", job))


def test_account_mismatch_is_refused_before_anything_else():
    azure = FakeAzure(tenant="tenant-b")
    with pytest.raises(InvalidInput, match="belongs to tenant tenant-b, not tenant-a"):
        check_account("sub-1", "tenant-a", azure)
    with pytest.raises(InvalidInput, match="set AZURE_SUBSCRIPTION_ID and AZURE_TENANT_ID"):
        check_account(None, "tenant-a", azure)
    with pytest.raises(InvalidInput, match="is not the environment's subscription sub-pinned"):
        check_account("sub-1", "tenant-a", azure, pinned_subscription="sub-pinned")
    check_account("sub-1", "TENANT-A", FakeAzure(tenant="tenant-a"))


def test_verification_outcomes():
    assert verification_outcome([], []) == "verified"
    assert verification_outcome(["x"], []) == "forced"
    assert verification_outcome(["x"], ["x"]) == "failed"
    assert verification_outcome([], ["a soft-deleted item that could not be purged"]) == "failed"


# --- orchestration with stand-ins ----------------------------------------------------------------------

class FakeDriver:
    backend = "memory://"

    def __init__(self, stacks=(), up_errors=(), destroy_errors=None, outputs=None):
        self.stacks = list(stacks)
        self.up_errors = list(up_errors)
        self.destroy_errors = destroy_errors or {}
        self.up_outputs = outputs or {}
        self.calls = []
        self.azure = None  # a FakeAzure whose directory a destroy changes (make() wires it)

    def outputs(self, name):
        return self.up_outputs if name.startswith("run-") else {}

    def list_run_stacks(self):
        return list(self.stacks)

    def prepare(self, spec, settings):
        self.calls.append(("prepare", spec.stack_name))
        return spec.stack_name

    def up(self, stack):
        self.calls.append(("up", stack))
        if self.up_errors:
            raise self.up_errors.pop(0)
        return self.up_outputs, len(self.up_outputs.get("inventory") or []) * 7

    def destroy(self, name, remove=False):
        self.calls.append(("destroy", name))
        error = self.destroy_errors.get(name)
        if error:
            raise error
        if self.azure is not None:  # the agents' applications and service principals go to deleted items
            from haymaker.naming import app_display_name

            for e in self.up_outputs.get("inventory") or []:
                app = app_display_name(name.removeprefix("run-"), e["scenario"])
                self.azure.soft += [Leftover("deleted_application", f"app-{e['client_id']}", app),
                                    Leftover("deleted_service_principal", e["service_principal_object_id"], app)]

    def remove(self, name, force=False):
        self.calls.append(("remove", name))


class FakeLedger:
    def __init__(self):
        self.runs, self.updates, self.agents, self.events = {}, [], [], []

    def upsert_run(self, record):
        self.runs[record.run_id] = record

    def update_run(self, run_id, **changes):
        self.updates.append((run_id, changes))

    def upsert_agents(self, agents):
        self.agents.extend(agents)

    def add_event(self, run_id, kind, data):
        self.events.append((run_id, kind, data))

    def list_agents(self, run_id=None):
        return [a for a in self.agents if a.run_id == run_id]

    def get_run(self, run_id):
        return self.runs.get(run_id)

    def list_events(self, run_id):
        return [{"kind": kind, "data": data} for r, kind, data in self.events if r == run_id]

    where = "memory"

    def list_runs(self, **kw):
        return list(self.runs.values())

    def get_run(self, run_id):
        return self.runs.get(run_id)

    def list_events(self, run_id):
        return [{"kind": kind, "data": data} for r, kind, data in self.events if r == run_id]


class Settings:
    start_delay_minutes = 15


def make(driver=None, azure=None, now=NOW, tmp_path=None):
    sleeps = []
    driver, azure = driver or FakeDriver(), azure or FakeAzure()
    driver.azure = azure
    life = Lifecycle(driver=driver, azure=azure, ledger=FakeLedger(),
                     clock=Clock(now=lambda: now, sleep=sleeps.append, monotonic=lambda: sum(sleeps)),
                     backoff=Backoff(attempts=4, base_seconds=1), audit_dir=tmp_path, rng=random.Random(1),
                     echo=lambda *_: None)
    return life, sleeps


SPEC = RunSpec(run_id="20261121t1150z-abcd", environment="dev", trigger="dispatch", scenarios=("compute-01-x",),
               duration_hours=2)
INVENTORY = [{"scenario": "compute-01-x", "resource_group_name": "haymaker-20261121t1150z-abcd-compute-01-x",
              "client_id": "c", "service_principal_object_id": "o", "job_name": "hm-compute-01-x-1234", "job_id": "j"}]
OUTPUTS = {"inventory": INVENTORY, "run": {"run_resource_group": "haymaker-20261121t1150z-abcd-run"}}


def test_up_retries_transient_errors_then_records_the_run(tmp_path):
    driver = FakeDriver(up_errors=[StackLocked("locked", "the stack is currently locked by 1 lock(s)"),
                                   StackError("x", "Status=429 TooManyRequests")], outputs=OUTPUTS)
    life, sleeps = make(driver, tmp_path=tmp_path)
    result = life.up(SPEC, Settings, on_demand_limit=3, cost_usd=1.5)
    assert [c[0] for c in driver.calls] == ["prepare", "up", "up", "up"]
    assert len(sleeps) == 2 and all(0 <= s <= 2 for s in sleeps[:1])
    assert result.inventory == INVENTORY
    assert result.jobs == {"compute-01-x": "scheduled 2026-11-21T12:05:00Z"}
    ledger = life.ledger
    assert ledger.runs[SPEC.run_id].status == "deploying" and ledger.runs[SPEC.run_id].cost_estimate_usd == 1.5
    assert ledger.updates[-1][1]["status"] == "running"
    assert [a.scenario for a in ledger.agents] == ["compute-01-x"]
    audit = (tmp_path / f"{SPEC.run_id}.json").read_text()
    assert '"outcome": "running"' in audit and '"actor"' in audit and SPEC.git_sha in audit


def test_failed_up_destroys_the_stack_and_says_so():
    driver = FakeDriver(up_errors=[StackError("bad", "Code=\"InvalidTemplate\" Message=\"nope\"")])
    life, sleeps = make(driver)
    with pytest.raises(RunFailed, match="failed to deploy .*the stack was destroyed \\(teardown verified\\)"):
        life.up(SPEC, Settings, on_demand_limit=3, cost_usd=1)
    assert ("destroy", SPEC.stack_name) in driver.calls
    assert sleeps == []  # a logic error is not retried
    statuses = [u[1]["status"] for u in life.ledger.updates]
    assert statuses == ["verified", "failed"]
    assert [e[1] for e in life.ledger.events] == ["teardown", "audit"]


def test_up_gives_up_after_bounded_transient_retries():
    driver = FakeDriver(up_errors=[StackError("x", "503 ServiceUnavailable")] * 10)
    life, sleeps = make(driver)
    with pytest.raises(RunFailed, match="after 4 attempt"):
        life.up(SPEC, Settings, on_demand_limit=3, cost_usd=1)
    assert len(sleeps) == 3 and ("destroy", SPEC.stack_name) in driver.calls


def test_fourth_on_demand_run_is_refused_before_anything_is_created():
    live = [stack(f"20261121t1100z-000{i}", "2026-11-21T14:00:00Z", "dispatch") for i in range(3)]
    driver = FakeDriver(stacks=live)
    life, _ = make(driver)
    with pytest.raises(Refused):
        life.up(SPEC, Settings, on_demand_limit=3, cost_usd=1)
    assert driver.calls == [] and life.ledger.runs == {}


def test_jobs_whose_start_minute_passed_are_started():
    azure = FakeAzure(executions={"hm-started": [NOW]})
    life, _ = make(azure=azure, now=NOW)
    inventory = [{"scenario": "a", "job_name": "hm-started"}, {"scenario": "b", "job_name": "hm-late"}]
    status = life.check_jobs(inventory, "rg", start_at=NOW - timedelta(minutes=10))
    assert status == {"a": "started", "b": "started by haymaker"}
    assert ("start", "hm-late") in azure.calls


def test_reap_tears_down_only_expired_runs_and_one_failure_does_not_stop_the_others():
    stacks = [stack("20261121t0100z-0001", "2026-11-21T09:00:00Z"), stack("20261121t0100z-0002", "2026-11-21T09:00:00Z"),
              stack("20261121t0100z-0003", "2026-11-21T09:00:00Z"), stack("20261121t1100z-0004", "2026-11-21T19:00:00Z")]
    broken = "run-20261121t0100z-0002"
    driver = FakeDriver(stacks=stacks, destroy_errors={broken: StackError("x", "Code=\"AuthorizationFailed\"")})
    rg = Leftover("resource_group", "/subscriptions/s/resourceGroups/haymaker-20261121t0100z-0002-a",
                  "haymaker-20261121t0100z-0002-a", "microsoft.resources/subscriptions/resourcegroups")
    azure = FakeAzure(leftovers=[rg])
    life, _ = make(driver, azure)
    results = {r.run_id: r for r in life.reap(now=NOW, parallel=2)}
    assert set(results) == {"20261121t0100z-0001", "20261121t0100z-0002", "20261121t0100z-0003"}
    assert results["20261121t0100z-0001"].outcome == "verified"
    assert results["20261121t0100z-0003"].outcome == "verified"
    assert results["20261121t0100z-0002"].outcome == "forced"  # destroy failed, leftovers force-deleted
    assert ("remove", broken) in driver.calls
    assert ("destroy", "run-20261121t1100z-0004") not in driver.calls


def test_teardown_outcomes_verified_forced_failed():
    app = Leftover("application", "app-object-id", "haymaker-20261121t0100z-0001-x")
    loose = Leftover("resource", "/subscriptions/s/resourceGroups/other/providers/Microsoft.Web/sites/w",
                     "haymaker-20261121t0100z-0001-site", "Microsoft.Web/sites")
    life, _ = make(azure=FakeAzure(leftovers=[app, loose]))
    result = life.teardown("20261121t0100z-0001")
    assert result.outcome == "forced" and result.destroyed and result.leftovers_remaining == []
    stuck = FakeAzure(leftovers=[app], undeletable={"app-object-id"})
    life, sleeps = make(azure=stuck)
    result = life.teardown("20261121t0100z-0001")
    assert result.outcome == "failed" and [x.id for x in result.leftovers_remaining] == ["app-object-id"]
    assert len(sleeps) == 3  # conflicts were retried before giving up (then no re-reads: nothing was deleted)
    assert life.ledger.updates[-1][1]["status"] == "teardown_failed"


def test_soft_deleted_items_are_purged_on_every_teardown_and_are_not_leftovers():
    gone_app = Leftover("deleted_application", "d-1", "haymaker-20261121t0100z-0001-x")
    vault = Leftover("deleted_key_vault", "/subscriptions/s/providers/Microsoft.KeyVault/locations/l/deletedVaults/kv",
                     "haymaker-20261121t0100z-0001-kv", location="l")
    life, _ = make(azure=FakeAzure(soft=[gone_app, vault]))
    result = life.teardown("20261121t0100z-0001")
    assert result.outcome == "verified" and result.purged == [gone_app, vault]
    assert result.kinds == {"deleted_application": {"found": 0, "remaining": 0, "purged": 1},
                            "deleted_key_vault": {"found": 0, "remaining": 0, "purged": 1}}
    stuck, _ = make(azure=FakeAzure(soft=[gone_app], undeletable={"d-1"}))
    result = stuck.teardown("20261121t0100z-0001")
    assert result.outcome == "failed" and result.leftovers_remaining == [gone_app]


def test_reap_dry_run_touches_nothing():
    driver = FakeDriver(stacks=[stack("20261121t0100z-0001", "2026-11-21T09:00:00Z")])
    life, _ = make(driver)
    (result,) = life.reap(now=NOW, dry_run=True)
    assert result.outcome == "planned" and driver.calls == [] and life.ledger.updates == []


def test_what_the_ledger_holds_after_a_run_and_its_teardown(azurite, tmp_path):
    """`up` then `down` with the real ledger on Azurite; only Pulumi and Azure are stand-ins."""
    from haymaker.ledger import Ledger
    from tests.azurite import fresh_service

    ledger = Ledger(fresh_service(azurite), tmp_path / "spool.jsonl", retries=1, backoff=0.01)
    driver, azure, slept = FakeDriver(outputs=OUTPUTS), FakeAzure(), []
    driver.azure = azure
    life = Lifecycle(driver=driver, azure=azure, ledger=ledger,
                     clock=Clock(now=lambda: NOW, sleep=slept.append, monotonic=lambda: sum(slept)),
                     backoff=Backoff(attempts=2, base_seconds=0),
                     audit_dir=tmp_path / "audit", rng=random.Random(1), echo=lambda *_: None)
    life.up(SPEC, Settings, on_demand_limit=3, cost_usd=2.25)
    run = ledger.get_run(SPEC.run_id)
    assert (run.status, run.trigger, run.scenarios, run.cost_estimate_usd) == ("running", "dispatch", ["compute-01-x"], 2.25)
    assert run.expires_at == SPEC.expires_at and run.deploy_seconds is not None
    (agent,) = ledger.list_agents(SPEC.run_id)
    assert (agent.scenario, agent.job_name, agent.resource_group) == (
        "compute-01-x", "hm-compute-01-x-1234", "haymaker-20261121t1150z-abcd-compute-01-x")
    assert agent.status.startswith("scheduled")
    result = life.teardown(SPEC.run_id)
    run = ledger.get_run(SPEC.run_id)
    assert result.outcome == "verified" and run.status == "verified" and run.resources_orphaned == 0
    kinds = [e["kind"] for e in ledger.list_events(SPEC.run_id)]
    assert "audit" in kinds and "teardown" in kinds


def test_a_teardown_that_stops_on_an_unexpected_error_is_recorded_failed_by_down_and_by_reap():
    """Whatever stops a teardown, its run ends `teardown_failed` in the ledger with the reason, never `running`."""
    from haymaker.retry import GaveUp

    class Broken(FakeAzure):
        def survey(self, proof):
            raise GaveUp(RuntimeError("cannot read /applications/x: Graph 403"), 1, "logic")

    life, _ = make(FakeDriver(stacks=[stack("20261121t0100z-0001", "2026-11-21T09:00:00Z")]), Broken())
    (result,) = life.reap(now=NOW)
    assert result.outcome == "failed" and "Graph 403" in result.error
    assert life.ledger.updates[-1] == ("20261121t0100z-0001", life.ledger.updates[-1][1])
    assert life.ledger.updates[-1][1]["status"] == "teardown_failed" and "Graph 403" in life.ledger.updates[-1][1]["detail"]
    result = life.teardown("20261121t0100z-0001")
    assert result.outcome == "failed" and life.ledger.updates[-1][1]["status"] == "teardown_failed"


def test_a_lock_is_stale_only_after_every_job_that_may_hold_one_has_timed_out():
    """The reaper clears a lock older than HAYMAKER_STALE_LOCK_MINUTES: no job that runs `up`, `down`, `reap`
    or `cleanup` may still be running by then (GitHub kills a job at its timeout-minutes)."""
    from pathlib import Path

    import yaml

    from haymaker.config import BY_NAME

    longest = 0
    for path in (Path(__file__).resolve().parents[1] / ".github" / "workflows").glob("*.yml"):
        for job in (yaml.safe_load(path.read_text()).get("jobs") or {}).values():
            runs = " ".join(str(step.get("run", "")) for step in job.get("steps") or [])
            if any(f"haymaker {verb}" in runs for verb in ("up", "down", "reap", "cleanup")):
                longest = max(longest, int(job["timeout-minutes"]))
    assert longest >= 25  # the reaper's own job is among them
    assert BY_NAME["stale_lock_minutes"].default > longest
