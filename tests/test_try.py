"""`haymaker try SCENARIO` as an operator runs it on their own machine: the real command, lifecycle,
Automation-API driver, agent runner, Azure adapters, ledger and answer key, talking to a stand-in `pulumi`
and a stand-in `az` (signed in as the operator) on PATH, local HTTPS stand-ins of ARM, Graph and Log
Analytics, and Azurite. Only time is faked: the agent's pauses jump instead of passing.

The scenario is picked at run time by what a try can run, never by name: the catalog may change.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from components.tags import haymaker_tags
from haymaker.agent.clock import CompressedClock
from haymaker.cli import main
from haymaker.doctor import CONTRIBUTOR
from haymaker.ledger import Ledger
from haymaker.naming import resource_group_name
from haymaker.settings import load_environment
from haymaker.errors import HayMakerError
from haymaker.policycheck import load_policy_config
from haymaker.trycheck import DEFAULT_MINUTES, MAX_MINUTES, MIN_MINUTES, check_location, extensions_needed, refusal
from haymaker.tryrun import declare, try_spec
from scenarios.catalog import load_catalog
from tests.conftest import local_state
from tests.fakes.az_cli import FakeAz
from tests.fakes.cloud import SUBSCRIPTION_ID, TENANT_ID
from tests.fakes.login import jwt
from tests.fakes.pulumi_cli import FakePulumi

USER_OID = "5a11ad00-0000-4000-8000-00000000a0a0"
UPN = "ada@contoso.example"
OTHER_SUBSCRIPTION = "99999999-8888-7777-6666-555555555555"


def tryable():
    """A scenario a try runs, chosen by property: no Graph, no agent application, locations dev allows, a
    deploy step that declares the ARM operations it causes (so the answer key has something to match)."""
    catalog, dev = load_catalog(), load_environment("dev")
    for s in catalog.scenarios.values():
        try:
            check_location(dev.location, dev, s, load_policy_config("dev"))
        except HayMakerError:
            continue
        if refusal(s) is None and any(step.expect for step in s.phases["deploy"]):
            return s
    pytest.fail("no scenario in the catalog can be tried without the platform")


def command_words(argv) -> str:
    """The command words of an az call, up to its first flag."""
    out = []
    for w in argv:
        if w.startswith("-"):
            break
        out.append(w)
    return " ".join(out)


def words(step) -> str:
    """A step's command words: what the stand-in az matches it by."""
    return command_words(step.run.split()[1:])


class JumpClock(CompressedClock):
    """The try's clock with waits that jump instead of passing: a day in the time its commands take."""

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        with self._lock:
            self._ahead += max(0.0, seconds)
        return False


@pytest.fixture
def sandbox(fake_cloud, azurite, tmp_path, monkeypatch):
    """An operator's machine: az signed in to their sandbox subscription, Pulumi with a file backend, the
    ledger on Azurite, a workspace configured; no GitHub Actions and no deployer anywhere."""
    for key in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                "AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_SECRET", "HAYMAKER_ENVIRONMENT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in fake_cloud.haymaker_env().items():
        monkeypatch.setenv(key, value)
    local_state(monkeypatch, tmp_path, azurite)
    monkeypatch.setattr("haymaker.agent.clock.CompressedClock", JumpClock)
    pulumi = FakePulumi.install(tmp_path / "pulumi", monkeypatch)
    az = FakeAz.install(tmp_path / "az", monkeypatch, subscription_id=SUBSCRIPTION_ID, tenant_id=TENANT_ID,
                        object_id=USER_OID, upn=UPN)
    scenario = tryable()
    az.update(extensions={name: "1.0.0" for name in extensions_needed(scenario)})
    fake_cloud.arm.role_assignments = [(USER_OID, CONTRIBUTOR)]
    return fake_cloud, pulumi, az, scenario, tmp_path


def prepared(sandbox, *, destroy_fail: str = "", fail=()):
    """A run id for now, and the stand-ins told what its `up` creates: the try program's declarations
    (under mocks, with the operator as the agent), the group in ARM, and the group's DELETE on destroy."""
    cloud, pulumi, _, scenario, _ = sandbox
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dt%H%Mz") + "-7e57"
    settings = replace(load_environment("dev"), subscription_id=SUBSCRIPTION_ID)
    spec = try_spec(run_id, "dev", scenario.name, DEFAULT_MINUTES, actor=UPN, git_sha="unknown")
    declared, outputs = declare(spec, settings, load_catalog())
    outputs["inventory"] = [{**e, "service_principal_object_id": USER_OID} for e in outputs["inventory"]]
    group = resource_group_name(run_id, scenario.name)
    tags = haymaker_tags(run_id, scenario.name, "dev", spec.expires_at.isoformat())
    cloud.arm.add_group(group, tags, created_by=UPN, created_by_type="User")  # ARM names a user by sign-in name
    token = jwt({"oid": USER_OID, "upn": UPN, "scp": "user_impersonation"})
    pulumi.script(spec.stack_name, resources=[{"urn": d.urn, "type": d.type} for d in declared
                                              if d.type != "pulumi:pulumi:Stack"],
                  outputs=outputs, destroy_fail=destroy_fail, fail=fail,
                  deletes=[{"url": f"{cloud.arm.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{group}"
                                   "?api-version=2025-04-01", "token": token}])
    return run_id, group


def run(capsys, *args):
    code = main(["try", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def steps_called(az) -> list[str]:
    """The agent's step calls, by command words, in order (its sign-in checks left out)."""
    return [command_words(c["argv"]) for c in az.calls() if c["user_agent"] and c["argv"][:2] != ["account", "show"]]


def test_a_try_lives_the_day_as_you_then_proves_nothing_is_left(sandbox, capsys):
    cloud, pulumi, az, scenario, tmp = sandbox
    run_id, group = prepared(sandbox)
    started = datetime.now(timezone.utc)
    first = next(step for step in scenario.phases["deploy"] if step.expect)
    group_id = cloud.arm.group_id(group)
    # What the workspace will hold: the stack creating the group (as you, before the first step), your steps'
    # operations, someone else in the group, and you elsewhere.
    cloud.log_analytics.add_activity(at=started - timedelta(seconds=1), caller=UPN, resource_id=group_id,
                                     operation="Microsoft.Resources/subscriptions/resourceGroups/write", status="Success")
    for op in first.expect:
        cloud.log_analytics.add_activity(at=started + timedelta(seconds=5), caller=UPN, status="Success",
                                         operation=op, resource_id=f"{group_id}/providers/{op.rsplit('/', 1)[0]}/x")
    cloud.log_analytics.add_activity(at=started + timedelta(seconds=5), caller=UPN, status="Success",
                                     operation=first.expect[0], resource_id=f"/subscriptions/{SUBSCRIPTION_ID}/"
                                     "resourceGroups/mine/providers/Microsoft.Compute/virtualMachines/other")

    code, out, err = run(capsys, scenario.name, "--run-id", run_id, "--yes")
    assert code == 0, err + out
    said = " ".join(out.split())
    assert f"you are the agent: user {UPN} (object id {USER_OID}); no service principal is created" in said
    assert f"`haymaker down {run_id}`" in said and "teardown: verified" in said

    # A run stack like any other, of the try variant, deploying into the subscription asked for.
    stack = f"run-{run_id}"
    assert [c for c in pulumi.commands() if c in ("up", "destroy", "stack rm")] == ["up", "destroy", "stack rm"]
    assert stack not in pulumi.state["stacks"]  # the stack is gone: read what `up` was given
    up_call = next(c for c in pulumi.calls() if c[:1] == ["up"])
    assert "--policy-pack" in up_call
    set_all = next(c for c in pulumi.calls() if c[:2] == ["config", "set-all"])
    assert f"azure-native:subscriptionId={SUBSCRIPTION_ID}" in set_all
    assert any(a.startswith("haymaker:runSpec=") and '"variant": "try"' in a for a in set_all)

    # The agent ran here as you: no sign-in of its own, your az configuration, every call named for the run.
    calls = az.calls()
    assert not any(c["argv"][:1] == ["login"] for c in calls)
    steps = [c for c in calls if c["user_agent"]]
    assert steps and {c["user_agent"] for c in steps} == {f"haymaker/{run_id}/{scenario.name}"}
    assert {c["dynamic_install"] for c in steps} == {"no"} and not any("haymaker-az-" in (c["config_dir"] or "")
                                                                       for c in steps)
    called = steps_called(az)
    deploy, cleanup = [words(s) for s in scenario.phases["deploy"]], [words(s) for s in scenario.phases["cleanup"]]
    assert called[:len(deploy)] == deploy and called[-len(cleanup):] == cleanup

    # Nothing is left, and the ledger, the audit directory and the record say so.
    assert group not in cloud.arm.groups
    ledger = Ledger.from_config(_cfg())
    assert ledger.get_run(run_id).status == "verified" and ledger.get_run(run_id).trigger == "local"
    (agent,) = ledger.list_agents(run_id)
    assert agent.service_principal_object_id == USER_OID and agent.client_id == "" and agent.job_name == ""
    record = json.loads((tmp / "audit" / f"{run_id}.try.json").read_text())
    assert record["agent"]["outcome"] == "completed" and record["teardown"]["outcome"] == "verified"
    assert record["actor"] == {"kind": "user", "name": UPN, "object_id": USER_OID}
    lines = [json.loads(l) for l in (tmp / "audit" / f"{run_id}.agent.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "agent-start" and lines[-1]["event"] == "agent-end"
    # The day jumped hours ahead; the lines keep real times (what the answer key joins on) and the day's own.
    late = [l for l in lines if "schedule_time" in l]
    assert late and all(l["time"] < l["schedule_time"] for l in late)
    assert all(l["time"] <= (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
               for l in lines)

    # The answer key: your operations on the step that expected them; the stack's own group write is the
    # platform's; you elsewhere are not this try's.
    key = record["answer_key"]
    assert key["matched"] >= len(first.expect) and key["events"] == len(first.expect), key
    steps = [json.loads(l) for l in (tmp / "audit" / f"{run_id}.truth.jsonl").read_text().splitlines()]
    on_first = next(s for s in steps if s["step"] == first.name)
    assert sorted(on_first["matched"]) == sorted(first.expect)
    assert not any(op["operation"].lower().endswith("resourcegroups/write") for s in steps for op in s["observed"])
    # Graph answers a user's token without app roles with 403: the look in the directory is noted, not failed.
    assert "note: the directory could not be read as you" in said


def test_a_step_failing_for_good_still_tears_everything_down(sandbox, capsys):
    cloud, pulumi, az, scenario, tmp = sandbox
    run_id, group = prepared(sandbox)
    first, *later = scenario.phases["deploy"]
    az.fail(words(first), "ERROR: (InvalidParameter) The value is not valid.\n")
    code, out, err = run(capsys, scenario.name, "--run-id", run_id, "--yes")
    assert code == 1, err + out
    assert "the agent's day ended deploy-failed (exit 3)" in err and "teardown verified: nothing is left" in err
    assert "Traceback" not in err + out
    called = steps_called(az)
    cleanup = [words(s) for s in scenario.phases["cleanup"]]
    assert called[0] == words(first) and not {words(s) for s in later} - {words(first)} & set(called)  # stopped there
    assert called[-len(cleanup):] == cleanup  # the agent cleaned up after itself, then the teardown ran
    assert group not in cloud.arm.groups and f"run-{run_id}" not in pulumi.state["stacks"]
    ledger = Ledger.from_config(_cfg())
    assert ledger.get_run(run_id).status == "verified"
    assert [e["data"]["agent"]["outcome"] for e in ledger.list_events(run_id) if e["kind"] == "try"] == ["deploy-failed"]


def test_ctrl_c_in_the_middle_of_the_day_cleans_up_and_tears_down(sandbox, capsys):
    cloud, pulumi, az, scenario, tmp = sandbox
    run_id, group = prepared(sandbox)
    az.interrupt(words(scenario.phases["deploy"][0]))
    code, out, err = run(capsys, scenario.name, "--run-id", run_id, "--yes")
    assert code == 130, err + out
    assert "interrupted; teardown verified: nothing is left" in err
    record = json.loads((tmp / "audit" / f"{run_id}.try.json").read_text())
    assert record["stopped_by"] == "interrupted" and "signal" in record["agent"]["outcome"]
    assert group not in cloud.arm.groups and f"run-{run_id}" not in pulumi.state["stacks"]


def test_an_exception_and_a_failed_destroy_still_leave_nothing(sandbox, capsys, monkeypatch):
    """The agent breaks (a bug), then Pulumi cannot destroy the stack: the teardown deletes the tagged group
    itself, proves it gone, and the try says what broke, without a traceback."""
    cloud, pulumi, az, scenario, tmp = sandbox
    run_id, group = prepared(sandbox, destroy_fail="error: the provider crashed")

    def broken(*args, **kwargs):
        raise RuntimeError("the agent broke")

    monkeypatch.setattr("haymaker.agent.runner.run_agent", broken)
    code, out, err = run(capsys, scenario.name, "--run-id", run_id, "--yes")
    assert code == 1, err + out
    assert "RuntimeError: the agent broke; teardown forced: nothing is left" in err and "Traceback" not in err
    assert group not in cloud.arm.groups and f"run-{run_id}" not in pulumi.state["stacks"]
    assert Ledger.from_config(_cfg()).get_run(run_id).status == "forced"


def test_a_day_that_outlives_the_trys_time_is_stopped_and_still_torn_down(sandbox, capsys, monkeypatch):
    """The day is stopped well before the stack's expiry (here: at once), cleans up first, then the teardown."""
    cloud, pulumi, az, scenario, tmp = sandbox
    run_id, group = prepared(sandbox)
    monkeypatch.setattr("haymaker.tryrun.TEARDOWN_MARGIN", timedelta(hours=10))
    code, out, err = run(capsys, scenario.name, "--run-id", run_id, "--yes", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["stopped_by"] == "time limit" and "signal" in doc["agent"]["outcome"], err
    assert doc["teardown"]["outcome"] == "verified" and "nothing is left" in err
    assert group not in cloud.arm.groups and f"run-{run_id}" not in pulumi.state["stacks"]


def test_a_deploy_that_fails_for_good_runs_no_agent_and_leaves_nothing(sandbox, capsys):
    cloud, pulumi, az, scenario, tmp = sandbox
    run_id, group = prepared(sandbox, fail=["error: InvalidParameter: the location is not available"])
    code, out, err = run(capsys, scenario.name, "--run-id", run_id, "--yes")
    assert code == 1 and f"run-{run_id} failed to deploy" in err and "nothing is left" in err, err
    assert not [c for c in az.calls() if c["user_agent"]]  # no step ran
    assert group not in cloud.arm.groups and f"run-{run_id}" not in pulumi.state["stacks"]
    # The ledger keeps what happened: the deploy failed, and the stack was torn down once.
    assert Ledger.from_config(_cfg()).get_run(run_id).status == "failed"
    assert [c for c in pulumi.commands() if c in ("up", "destroy")] == ["up", "destroy"]


def test_without_a_workspace_the_answer_key_is_skipped_and_says_why(sandbox, capsys, monkeypatch):
    monkeypatch.delenv("HAYMAKER_LOG_ANALYTICS_WORKSPACE")
    run_id, _ = prepared(sandbox)
    code, out, err = run(capsys, sandbox[3].name, "--run-id", run_id, "--yes", "--json")
    doc = json.loads(out)
    assert code == 0, err
    assert doc["answer_key"]["skipped"].startswith("no Log Analytics workspace is configured")
    assert doc["teardown"]["outcome"] == "verified" and doc["agent"]["outcome"] == "completed"


def test_every_missing_prerequisite_is_listed_at_once_and_nothing_is_created(sandbox, capsys, monkeypatch):
    cloud, pulumi, az, scenario, tmp = sandbox
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    cloud.arm.role_assignments = []
    az.update(account={"id": OTHER_SUBSCRIPTION, "name": "Production", "tenantId": TENANT_ID})
    code, out, err = run(capsys, scenario.name, "--subscription", SUBSCRIPTION_ID, "--yes")
    assert code == 1
    said = " ".join(err.split())
    assert "prerequisite(s) missing; nothing was changed" in said
    assert "state backend:" in said and "PULUMI_CONFIG_PASSPHRASE" in said
    assert f"your az CLI's subscription is {OTHER_SUBSCRIPTION} (Production), not {SUBSCRIPTION_ID}" in said
    assert f"`az account set --subscription {SUBSCRIPTION_ID}`" in said
    assert "rights: not checked" in said  # it needs the subscription first
    assert [c for c in pulumi.commands() if c != "version"] == []

    az.update(logged_in=False, account={"id": SUBSCRIPTION_ID, "name": "Ada's sandbox", "tenantId": TENANT_ID})
    code, out, err = run(capsys, scenario.name, "--yes")
    said = " ".join(err.split())
    assert code == 1 and "az login:" in said and "az login" in said.split("az login:", 1)[1]
    assert [c for c in pulumi.commands() if c != "version"] == [] and not cloud.arm.groups


def test_no_rights_and_a_missing_extension_are_said_with_their_fix(sandbox, capsys, monkeypatch):
    cloud, pulumi, az, scenario, tmp = sandbox
    cloud.arm.role_assignments = []
    code, out, err = run(capsys, scenario.name, "--yes")
    said = " ".join(err.split())
    assert code == 1 and f"{UPN} holds neither Contributor nor Owner on subscription {SUBSCRIPTION_ID}" in said
    with_extension = next((s for s in load_catalog().scenarios.values() if refusal(s) is None and extensions_needed(s)),
                          None)
    if with_extension is not None:  # the catalog has one that needs an extension: az has none installed
        az.update(extensions={})
        code, out, err = run(capsys, with_extension.name, "--yes")
        assert code == 1 and f"`az extension add --name {extensions_needed(with_extension)[0]}`" in err


@pytest.mark.parametrize("args, code, said", [
    (["{typo}"], 1, "did you mean {name}"),
    (["{name}", "--minutes", str(MIN_MINUTES - 1)], 1, f"from {MIN_MINUTES} to {MAX_MINUTES}"),
    (["{name}", "--minutes", str(MAX_MINUTES + 1)], 1, f"from {MIN_MINUTES} to {MAX_MINUTES}"),
    (["{name}", "--location", "antarctica"], 1, "--location antarctica is not allowed in dev"),
    (["{name}", "--run-id", "19700101t0000z-abcd"], 1, "but a try starts now"),
    (["{name}", "--subscription", "my-sandbox"], 1, "is not a subscription id"),
])
def test_bad_input_is_refused_before_anything_is_asked_or_created(sandbox, capsys, args, code, said):
    cloud, pulumi, az, scenario, tmp = sandbox
    fill = {"name": scenario.name, "typo": scenario.name[:-1] + "x"}
    got, out, err = run(capsys, *[a.format(**fill) for a in args], "--yes")
    assert got == code and said.format(**fill) in err, err
    assert pulumi.calls() == [] and az.calls() == [] and "Traceback" not in err


def test_a_graph_scenario_is_refused_with_what_to_do_instead(sandbox, capsys):
    graph = [s for s in load_catalog().scenarios.values() if s.graph_permissions]
    if not graph:
        pytest.skip("the catalog has no Graph scenario")
    code, out, err = run(capsys, graph[0].name, "--yes")
    assert code == 2 and "works in Microsoft Graph" in err and f"haymaker up -s {graph[0].name}" in err
    assert sandbox[1].calls() == [] and sandbox[2].calls() == []


def _cfg():
    from haymaker.config import load_config

    return load_config()
