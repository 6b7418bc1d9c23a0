"""The parts `haymaker try` is built from: what it refuses, the try program, its clock and its lines, the
agent signed in as the operator, and the answer key naming the operator. The whole command is in
tests/test_try.py. Scenarios here are fixtures or picked by property, never by name."""

from __future__ import annotations

import io
import json
import runpy
import threading
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

import pulumi
import pytest

from haymaker.agent.clock import CompressedClock
from haymaker.agent.config import LOGIN_USER, config_from_env
from haymaker.agent.runner import login_commands
from haymaker.errors import InvalidInput
from haymaker.mockrun import MOCK_DEPLOYER_OBJECT_ID, evaluate
from haymaker.naming import resource_group_name
from haymaker.progress import scenario_of
from haymaker.runspec import RunSpec, iso
from haymaker.stackconfig import run_stack_config
from haymaker.truth import Identity, activity_query, answer_key
from haymaker.trycheck import check_minutes, check_run_id_now, refusal
from haymaker.tryrun import AgentLines, declare, day_start, refuse_unless_allowed, state_of, try_spec
from scenarios.calendar import WorkCalendar
from scenarios.catalog import Scenario, Step
from tests.conftest import RUN_ID

SUB = "11111111-1111-1111-1111-111111111111"
OID = "44444444-4444-4444-4444-444444444444"


def fixture_scenario(*, graph=(), plane=None, run="az storage account list --resource-group ${RESOURCE_GROUP}"):
    step = Step("look", run, plane=plane)
    return Scenario(name="storage-01-fixture", area="storage", title="t", description="d", company={},
                    azure_roles=("Reader",), graph_permissions=tuple(graph), services=(),
                    phases={"deploy": (step,), "operate": (), "cleanup": ()})


def a_tryable(catalog):
    return next(s for s in catalog.scenarios.values() if refusal(s) is None)


# --- what a try refuses ---------------------------------------------------------------------------------

def test_a_try_refuses_what_needs_the_platforms_identities_and_takes_the_rest():
    assert refusal(fixture_scenario()) is None
    assert "works in Microsoft Graph (User.Read.All)" in refusal(fixture_scenario(graph=["User.Read.All"]))
    assert "step look" in refusal(fixture_scenario(plane="graph"))
    own = refusal(fixture_scenario(run="az bot create --resource-group ${RESOURCE_GROUP} --appid ${CLIENT_ID}"))
    assert "its agent's own Entra application" in own and "haymaker up -s storage-01-fixture" in own


def test_minutes_and_run_ids_out_of_range_are_refused():
    for bad in (4, 61, 0, True, "10"):
        with pytest.raises(InvalidInput, match="from 5 to 60"):
            check_minutes(bad)
    assert check_minutes(5) == 5 and check_minutes(60) == 60
    now = datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc)
    assert check_run_id_now("20261121t0605z-abcd", now) == "20261121t0605z-abcd"
    with pytest.raises(InvalidInput, match="a try starts now"):
        check_run_id_now("20261120t0600z-abcd", now)


def test_the_catalog_holds_a_scenario_a_try_can_run():
    """An invariant over whatever the catalog holds: `haymaker try` has something to try."""
    from scenarios.catalog import load_catalog

    catalog = load_catalog()
    assert any(refusal(s) is None for s in catalog.scenarios.values())
    assert all(refusal(s) for s in catalog.scenarios.values() if s.graph_permissions)


# --- the try program ------------------------------------------------------------------------------------

def test_the_try_program_declares_the_tagged_group_only_and_passes_the_policy_pack(catalog, settings):
    scenario = a_tryable(catalog)
    spec = try_spec(RUN_ID, "dev", scenario.name, 15, actor="ada", git_sha="abc")
    declared, outputs = declare(spec, settings, catalog)
    custom = [d for d in declared if d.custom]
    assert [d.type for d in custom] == ["azure-native:resources:ResourceGroup"]  # no app, role, job or platform
    (group,) = custom
    assert group.inputs["resourceGroupName"] == resource_group_name(RUN_ID, scenario.name)
    assert "haymaker:index:ScenarioSandbox" in group.parent and scenario_of(group.urn, [scenario.name]) == scenario.name
    assert group.inputs["tags"] == {"AzureHayMaker-managed": "true", "haymaker-run": RUN_ID,
                                    "haymaker-scenario": scenario.name, "haymaker-env": "dev",
                                    "haymaker-expires": iso(spec.expires_at)}
    (entry,) = outputs["inventory"]
    assert entry["service_principal_object_id"] == MOCK_DEPLOYER_OBJECT_ID  # the deploying identity: the operator
    assert (entry["client_id"], entry["job_name"]) == ("", "") and outputs["run"]["variant"] == "try"
    assert refuse_unless_allowed(spec, settings, catalog)
    assert spec.stack_tags()["haymaker:variant"] == "try" and spec.stack_tags()["haymaker:trigger"] == "local"


def test_pulumi_up_of_a_try_stack_runs_the_try_program(catalog, settings):
    """What the engine runs for a try stack (stacks/__main__.py on the stack config) is the try program, and
    it runs on a fresh clone: the shipped agentImage placeholder stops runs, not a try, which has no image."""
    scenario = a_tryable(catalog)
    spec = try_spec(RUN_ID, "dev", scenario.name, 15, actor="ada", git_sha="abc")
    config = run_stack_config(spec, replace(settings, subscription_id=SUB))["config"]
    assert config["azure-native:subscriptionId"] == SUB  # the provider deploys where the try was asked to
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    try:
        declared, _ = evaluate(lambda: runpy.run_module("stacks.__main__", run_name="__main__") and {},
                               project="haymaker", stack=spec.stack_name, platform_outputs={})
    finally:
        pulumi.runtime.set_all_config({})
    assert [d.type for d in declared if d.custom] == ["azure-native:resources:ResourceGroup"]


def test_a_try_spec_round_trips_and_holds_one_scenario(catalog):
    names = catalog.names()
    spec = try_spec(RUN_ID, "dev", names[0], 15, actor="ada", git_sha="abc")
    assert RunSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["variant"] == "try"
    assert "variant" not in replace(spec, variant="run").to_dict()  # runs read as before variants existed
    with pytest.raises(InvalidInput, match="exactly one scenario"):
        replace(spec, scenarios=tuple(names[:2]))
    with pytest.raises(InvalidInput, match="variant 'demo' is unknown"):
        replace(spec, variant="demo")
    assert spec.expires_at - spec.started_at == timedelta(hours=2)  # 15 min of day, deploy, cleanup, teardown


# --- the agent as the operator ---------------------------------------------------------------------------

def test_an_agent_running_as_the_operator_needs_no_secret_and_changes_no_default(tmp_path):
    env = {"HAYMAKER_RUN_ID": RUN_ID, "HAYMAKER_SCENARIO": "x", "HAYMAKER_EXPIRES_AT": "2026-11-21T14:00:00Z",
           "HAYMAKER_RESOURCE_GROUP": "haymaker-x", "HAYMAKER_LOCATION": "swedencentral",
           "HAYMAKER_CLEANUP_BUFFER_MINUTES": "30", "AZURE_TENANT_ID": SUB, "AZURE_SUBSCRIPTION_ID": SUB,
           "AZURE_CLIENT_ID": SUB, "HAYMAKER_AGENT_OBJECT_ID": OID, "HAYMAKER_LOGIN": LOGIN_USER}
    config = config_from_env(env)
    login, secret, account = login_commands(config)
    assert secret is None and "login" not in login.argv and "set" not in account.argv
    assert account.argv == ("az", "account", "show", "--subscription", SUB, "--output", "none")
    with pytest.raises(InvalidInput, match="AZURE_CLIENT_SECRET is not set"):
        config_from_env({**env, "HAYMAKER_LOGIN": "service-principal"})


def test_the_operators_az_configuration_is_used_as_it_is(tmp_path):
    from haymaker.agent.az import AzCli

    base = {"PATH": "/usr/bin:/bin", "AZURE_CONFIG_DIR": str(tmp_path / "mine"), "AZURE_CLIENT_SECRET": "s"}
    exe = tmp_path / "az"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    base["PATH"] = f"{tmp_path}:{base['PATH']}"
    own = AzCli(base, "haymaker/r/s", private_config=False)
    assert own.env["AZURE_CONFIG_DIR"] == str(tmp_path / "mine") and "AZURE_CLIENT_SECRET" not in own.env
    own.close()
    assert (tmp_path / "mine").exists() is False  # never created, never removed: az's own business
    private = AzCli(base, "haymaker/r/s")
    assert private.env["AZURE_CONFIG_DIR"] != str(tmp_path / "mine")
    private.close()


# --- time ------------------------------------------------------------------------------------------------

class _Immediate(threading.Event):
    """An event whose wait returns at once, as if the time had passed."""

    def wait(self, timeout=None):
        return self.is_set()


def test_the_compressed_clock_shortens_waits_only(monkeypatch):
    ticks = iter([100.0, 100.5, 200.0, 200.0])  # the first wait took half a real second
    monkeypatch.setattr("haymaker.agent.clock.time.monotonic", lambda: next(ticks))
    clock = CompressedClock(60)
    assert clock.wait(30, _Immediate()) is False
    assert clock.ahead() == pytest.approx(0.5 * 59)  # the schedule moved 30 s while the wall clock moved 0.5
    assert clock.real_seconds(120) == 120  # a command's timeout is not shortened
    stopped = _Immediate()
    stopped.set()
    assert clock.wait(30, stopped) is True


def test_a_day_that_starts_later_runs_ahead_of_the_wall_clock():
    later = datetime.now(timezone.utc) + timedelta(hours=3)
    clock = CompressedClock(10, start=later)
    assert timedelta(hours=3) - timedelta(seconds=5) < timedelta(seconds=clock.ahead()) <= timedelta(hours=3)
    assert CompressedClock(10, start=datetime.now(timezone.utc) - timedelta(hours=1)).ahead() == 0


CAL = WorkCalendar(timezone="Europe/London", workdays=(0, 1, 2, 3, 4), start=time(9), end=time(17, 30),
                   lunch_start=time(12, 30), lunch_end=time(13, 30), country=None, source="test")


@pytest.mark.parametrize("now, starts", [
    (datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc), datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)),
    (datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc), datetime(2026, 11, 25, 8, 50, tzinfo=timezone.utc)),
    (datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc), datetime(2026, 11, 30, 8, 50, tzinfo=timezone.utc)),
    (datetime(2026, 11, 24, 8, 55, tzinfo=timezone.utc), datetime(2026, 11, 24, 8, 55, tzinfo=timezone.utc)),
])
def test_a_try_lives_a_working_day_whenever_it_runs(now, starts):
    assert day_start(CAL, now) == starts  # Tuesday work, Tuesday night, Saturday, just before work


def test_the_agents_lines_get_real_times_and_keep_the_days(tmp_path):
    class Ahead:
        def ahead(self):
            return 3600.0

    seen = []
    lines = AgentLines(tmp_path / "agent.jsonl", Ahead(), seen.append)
    event = {"time": "2026-11-21T10:00:05Z", "started_at": "2026-11-21T10:00:01Z", "event": "step", "phase": "deploy",
             "step": "create", "ok": True}
    lines.write(json.dumps(event)[:20])  # the EventLog writes whole lines; a partial one waits
    assert seen == []
    lines.write(json.dumps(event)[20:] + "\n")
    lines.close()
    (kept,) = [json.loads(l) for l in (tmp_path / "agent.jsonl").read_text().splitlines()]
    assert kept == seen[0] == {**event, "time": "2026-11-21T09:00:05Z", "started_at": "2026-11-21T09:00:01Z",
                               "schedule_time": "2026-11-21T10:00:05Z"}
    assert state_of(kept) == "deploy: create" and state_of({**kept, "ok": False}) == "deploy: create failed"


# --- the answer key names the operator ------------------------------------------------------------------

def test_the_operator_is_found_by_the_name_the_activity_log_gives_a_user():
    """The Activity Log's Caller of a user is their UPN, not their object id: both name the try's agent,
    and only in the try's group."""
    me = Identity("s", object_id=OID, group="haymaker-g", callers=("ada@contoso.example",))
    start = datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc)
    assert '"ada@contoso.example"' in activity_query(start, start + timedelta(hours=1), [me], ["haymaker-g"])
    step = {"event": "step", "scenario": "s", "phase": "deploy", "step": "create", "ok": True, "attempt": 1,
            "started_at": iso(start), "time": iso(start + timedelta(seconds=30))}
    row = {"TimeGenerated": start + timedelta(seconds=10), "OperationNameValue": "Microsoft.Storage/storageAccounts/write",
           "ActivityStatusValue": "Success", "Caller": "ADA@contoso.example", "CorrelationId": "c1",
           "_ResourceId": "/subscriptions/x/resourcegroups/haymaker-g/providers/microsoft.storage/storageaccounts/a",
           "ResourceGroup": "HAYMAKER-G"}
    elsewhere = {**row, "CorrelationId": "c2", "ResourceGroup": "MINE"}
    key = answer_key("r", start=start, end=start + timedelta(hours=1), now=start + timedelta(hours=1), events=[step],
                     rows=[row, elsewhere], identities={"s": me}, groups=["haymaker-g"],
                     expected={"s": {"deploy": {"create": ("arm", ("Microsoft.Storage/storageAccounts/write",))}}},
                     mistakes={})
    assert key.events == {"s": 1} and [op.correlation_id for op in key.steps[0].observed] == ["c1"]


def test_an_event_stream_is_what_the_runner_writes(tmp_path):
    """AgentLines takes the EventLog's writes as they come (a line, then a flush)."""
    from haymaker.agent.events import EventLog

    class Zero:
        def ahead(self):
            return 0.0

    lines = AgentLines(tmp_path / "a.jsonl", Zero())
    log = EventLog(lines, lambda: datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc), RUN_ID, "s", secrets=("pw",))
    log("step", phase="deploy", step="x", command="az x --password pw", ok=True)
    lines.close()
    (event,) = lines.events
    assert event["command"] == "az x --password [secret]" and "schedule_time" not in event
    assert io.StringIO((tmp_path / "a.jsonl").read_text()).read().count("\n") == 1
