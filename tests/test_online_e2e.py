"""`haymaker doctor`, `up` and `down` as an operator (or GitHub Actions) runs them, with nothing of
HayMaker replaced: the real CLI, lifecycle, Automation-API driver, Azure adapters and ledger, talking to
a stand-in `pulumi` on PATH, local HTTPS stand-ins of ARM, Graph and Entra sign-in (the deployer signs
in with GitHub's OIDC token), and Azurite.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from components.roles import GRAPH_APP_ROLES
from haymaker import settings
from haymaker.cli import main
from haymaker.doctor import CONTRIBUTOR, RBAC_ADMIN
from haymaker.ledger import Ledger
from haymaker.plan import plan_run
from haymaker.runspec import iso
from tests.conftest import local_state
from tests.fakes.cloud import ADMIN_UNIT_ID, DEPLOYER_CLIENT_ID
from tests.fakes.login import aad_error, jwt
from tests.fakes.pulumi_cli import FakePulumi
from tests.test_handrun import config_copy

VM = "compute-01-linux-vm-web-server"
GROUPS = "identity-03-entra-users-groups"
DEPLOYER_OID = f"oid-of-{DEPLOYER_CLIENT_ID}"  # what the Entra stand-in puts in the deployer's tokens


@pytest.fixture
def online(fake_cloud, azurite, tmp_path, monkeypatch):
    """GitHub Actions' environment for the run deployer, every service a local stand-in."""
    for key, value in {**fake_cloud.github_actions_env(), **fake_cloud.haymaker_env()}.items():
        monkeypatch.setenv(key, value)
    local_state(monkeypatch, tmp_path, azurite)
    monkeypatch.setattr(settings, "REPO_ROOT", config_copy(tmp_path / "repo"))  # the keys a deployment sets
    pulumi = FakePulumi.install(tmp_path / "pulumi", monkeypatch)
    graph_identities = {GROUPS: {"permissions": ["AdministrativeUnit.Read.All", "Group.Create", "Group.Read.All",
                                                 "User.Read.All"],
                                 "identities": [{"id": f"/identities/{GROUPS}-{n}", "clientId": f"graph-identity-{n}",
                                                 "principalId": f"graph-principal-{n}"} for n in range(3)]}}
    pulumi.add_stack("dev", {}, outputs={
        "managedEnvironmentId": "/subscriptions/x/resourceGroups/haymaker-dev-platform/providers/Microsoft.App/"
                                "managedEnvironments/haymaker-dev",
        "agentPullIdentityId": "/identities/pull", "acrLoginServer": "haymakerdev.azurecr.io",
        "graphIdentities": graph_identities})
    fake_cloud.arm.role_assignments = [(DEPLOYER_OID, CONTRIBUTOR), (DEPLOYER_OID, RBAC_ADMIN)]
    for n in range(3):  # a Privileged Role Administrator granted them once (`haymaker platform grants`)
        fake_cloud.graph.grant_app_roles(f"graph-principal-{n}", [GRAPH_APP_ROLES[p] for p in graph_identities[GROUPS][
            "permissions"]])
    from haymaker.cli import lifecycle as cli_lifecycle

    real = cli_lifecycle.build_lifecycle

    def build(*args, **kwargs):  # the real lifecycle, whose waits pass on the stand-ins' clock
        life = real(*args, **kwargs)
        life.clock = fake_cloud.time.clock()
        life.azure.sleep = fake_cloud.time.sleep
        return life

    monkeypatch.setattr(cli_lifecycle, "build_lifecycle", build)
    return fake_cloud, pulumi, azurite


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_doctor_passes_when_every_prerequisite_is_there(online, capsys):
    code, out, err = run(capsys, "doctor", "--json")
    doc = json.loads(out)
    assert (code, doc["ok"]) == (0, True), doc
    assert [c["name"] for c in doc["checks"]] == ["config", "pulumi cli", "state backend", "azure credential",
                                                  "subscription", "platform stack", "ledger", "graph permission",
                                                  "rbac rights", "graph grants", "subscription groups",
                                                  "entra audit logs"]
    assert "v3.215.0" in doc["checks"][1]["detail"] and "ClientAssertionCredential" in doc["checks"][3]["detail"]
    assert online[0].unlisted_requests() == []


def test_doctor_names_each_failure_with_its_fix(online, capsys, monkeypatch, tmp_path):
    cloud, pulumi, _ = online
    FakePulumi.install(tmp_path / "old-pulumi", monkeypatch, version="3.205.0")
    cloud.login.roles.clear()  # the deployer's Graph permission was never consented
    cloud.arm.role_assignments = [(DEPLOYER_OID, CONTRIBUTOR)]  # and it cannot assign roles
    code, out, err = run(capsys, "doctor")
    # The platform stack cannot be read with that CLI either, nor the Graph identities it names.
    assert code == 1 and "5 of 12 checks failed" in err, out
    for fragment in ("v3.205.0", "older than 3.211.0", "upgrade the Pulumi CLI", "carries no roles",
                     "not Application.ReadWrite.OwnedBy", "holds neither HayMaker run deployer (dev) nor Contributor"):
        assert fragment in " ".join(out.split()), fragment



def test_doctor_gives_a_refused_token_what_failed_and_what_to_do_apart(online, capsys):
    cloud = online[0]
    cloud.login.refuse[cloud.graph.base_url] = aad_error(
        700213, "invalid_client", "No matching federated identity record found for presented assertion subject.")
    code, out, err = run(capsys, "doctor", "--json")
    graph = {c["name"]: c for c in json.loads(out)["checks"]}["graph permission"]
    assert code == 1 and not graph["ok"]
    assert graph["detail"].startswith("cannot get a token for Microsoft Graph: ") and "AADSTS700213" in graph["detail"]
    assert "id-token: write" in graph["fix"] and "id-token" not in graph["detail"]  # in Actions: check the OIDC trust

def test_up_then_down_with_every_service_a_stand_in(online, capsys):
    cloud, pulumi, azurite = online
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dt%H%Mz") + "-e2e0"
    plan = plan_run(environment="dev", scenarios=[VM, GROUPS], run_id=run_id, trigger="dispatch")
    stack = plan.spec.stack_name
    resources = [{"urn": d.urn, "type": d.type} for d in plan.declared if d.type != "pulumi:pulumi:Stack"]
    inventory = plan.outputs["inventory"]
    run_rg = plan.outputs["run"]["run_resource_group"]
    for entry in inventory:
        cloud.arm.add_job(run_rg, entry["job_name"])  # created by `up`, not started: its minute is ahead
    token = jwt({"appid": DEPLOYER_CLIENT_ID, "roles": ["Application.ReadWrite.OwnedBy", "Application.Read.All"]})
    # What Pulumi's providers delete on destroy, through ARM and Graph, as the deployer.
    groups = [e["resource_group_name"] for e in inventory] + [run_rg]
    for g in groups:
        cloud.arm.add_group(g, {"haymaker-run": run_id, "AzureHayMaker-managed": "true", "haymaker-env": "dev"})
    app = cloud.graph.add("applications", f"haymaker-{run_id}-{VM}")
    pulumi.script(stack, resources=resources, outputs=plan.outputs, deletes=[
        *[{"url": f"{cloud.arm.base_url}/subscriptions/{cloud.arm.subscription_id}/resourcegroups/{g}"
                  "?api-version=2025-04-01", "token": token} for g in groups],
        {"url": f"{cloud.graph.base_url}/v1.0/applications/{app['id']}", "token": token}])
    cloud.arm.index_lag = None  # Resource Graph keeps listing the destroyed groups throughout

    code, out, err = run(capsys, "up", "-s", VM, "-s", GROUPS, "--run-id", run_id, "--trigger", "dispatch", "--yes")
    assert code == 0, err
    tags = pulumi.state["stacks"][stack]["tags"]
    assert tags["haymaker:graph-identities"] == f"{GROUPS}=0" and tags["haymaker:expires"] == iso(plan.spec.expires_at)
    assert json.loads(pulumi.state["stacks"][stack]["config"]["haymaker:runSpec"])["graph_leases"] == {GROUPS: 0}
    lines = [l for l in out.splitlines() if l[:2].isdigit()]  # progress: stdout is not a terminal here
    for scenario in (VM, GROUPS):
        states = [l.split(f" {scenario}: ")[1] for l in lines if f" {scenario}: " in l]
        assert states[0] == "waiting" and states[-1].startswith("scheduled "), states
        assert "job" in states and ("identity" in states or scenario == GROUPS), states
    ledger = Ledger.from_config(_cfg())
    assert ledger.get_run(run_id).status == "running"
    assert sorted(a.scenario for a in ledger.list_agents(run_id)) == sorted([VM, GROUPS])

    # The Graph scenario's agent left a group; it is its identity's to delete. Teardown finds that identity
    # from the stack's lease tag and the platform's graphIdentities output (slot 0), as `up` resolved it.
    cloud.borrowable_identity("graph-identity-0", ["Group.Create", "Group.Read.All", "User.Read.All"])
    cloud.graph.add("groups", f"haymaker-{run_id}-lift-operations", owner="graph-identity-0", unit=ADMIN_UNIT_ID)

    code, out, err = run(capsys, "down", run_id, "--yes", "--json")
    (result,) = json.loads(out)
    assert code == 0, (err, result["suspicious"])
    assert result["outcome"] == "forced" and result["destroyed"] is True, result
    assert result["by_kind"]["group"] == {"found": 1, "remaining": 0, "purged": 0}
    assert result["by_kind"]["deleted_application"]["purged"] == 1
    assert result["by_kind"]["deleted_group"] == {"found": 0, "remaining": 0, "purged": 0, "retained": 1}
    # Nothing waits for the borrowed identity to show up deleted: it is the platform's, the destroy kept it.
    assert not [p for p in result["pending"] if GROUPS in p["name"] or p["id"].startswith("graph-")], result["pending"]
    assert "resource_group" not in result["by_kind"]  # the index's ghosts were read directly: gone
    assert stack not in pulumi.state["stacks"]  # removed last, after the leftovers
    assert ledger.get_run(run_id).status == "forced"
    assert [c for c in pulumi.commands() if c in ("destroy", "stack rm")] == ["destroy", "stack rm"]
    assert cloud.unlisted_requests() == []  # up, down and the providers' deletes: all in the permission table


def test_down_of_a_run_already_torn_down_verifies_that_nothing_is_left(online, capsys):
    """The reaper (or an earlier `down`) removed the stack: a second teardown has nothing to destroy and
    nothing to remove, and still proves nothing of the run is left."""
    from tests.test_ledger import make_run

    cloud, pulumi, _ = online
    run_id = "20261128t0230z-c0de"
    Ledger.from_config(_cfg()).upsert_run(make_run(run_id, "verified"))  # known: the ledger outlives its stack
    code, out, err = run(capsys, "down", run_id, "--yes", "--json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert (result["outcome"], result["destroyed"], result["error"]) == ("verified", True, ""), result
    assert [c for c in pulumi.commands() if c in ("destroy", "stack rm")] == []  # no stack to destroy or remove
    # Unless something is left: the stack and the ledger are gone, so any catalog scenario's exact name counts.
    cloud.arm.add_group(f"haymaker-{run_id}-{VM}", {"haymaker-run": run_id, "haymaker-env": "dev"})
    code, out, _ = run(capsys, "down", run_id, "--yes", "--json")
    assert json.loads(out)[0]["outcome"] == "forced" and f"haymaker-{run_id}-{VM}".lower() not in cloud.arm.groups


def _cfg():
    from haymaker.config import load_config

    return load_config()



def test_up_refuses_to_borrow_a_graph_identity_nobody_granted_and_creates_nothing(online, capsys):
    """The Graph identity's app roles are a person's one-time step; `up` only reads them, before anything."""
    cloud, pulumi, _ = online
    cloud.graph.reset_grants()
    cloud.graph.add_identity("graph-principal-0")  # the platform made it; no one granted it anything
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dt%H%Mz") + "-e2e2"
    code, out, err = run(capsys, "up", "-s", GROUPS, "--run-id", run_id, "--trigger", "dispatch", "--yes")
    assert code == 2, err
    assert f"{GROUPS} slot 0 lacks AdministrativeUnit.Read.All, Group.Create, Group.Read.All, User.Read.All" in err
    assert "`haymaker platform grants`" in err and "nothing was created" in err
    assert f"run-{run_id}" not in pulumi.state["stacks"] and "up" not in pulumi.commands()
    assert cloud.unlisted_requests() == []


def test_doctor_accepts_the_run_deployers_own_role_reads_grants_and_warns_of_foreign_groups(online, capsys):
    """In CI the deployer holds its custom role (no Contributor); the Graph identities' grants are read back;
    a group HayMaker did not create is a warning, not a failure."""
    cloud = online[0]
    from haymaker import trust

    custom = "5d1b6c3e-0000-4000-8000-0000000c0570"
    cloud.arm.custom_roles[custom] = "HayMaker run deployer (dev)"
    (granted,) = [g for g in trust.load_table("dev")[trust.RUN_DEPLOYER].roles if g.condition]
    cloud.arm.role_assignments = [(DEPLOYER_OID, custom, granted.condition)]  # as the bootstrap's step 4 granted
    cloud.arm.add_group("finance-prod", {"cost-center": "42"})
    cloud.arm.add_group("NetworkWatcherRG")
    code, out, err = run(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0, out
    assert checks["rbac rights"]["detail"].startswith("HayMaker run deployer (dev) at the subscription, its condition "
                                                      "allowing the catalog's")
    assert checks["graph grants"]["ok"] and checks["graph grants"]["detail"].startswith("3 Graph identities hold")
    groups = checks["subscription groups"]
    assert groups["ok"] and groups["warning"] and groups["detail"] == "1 resource group(s) HayMaker did not create: finance-prod"
    assert cloud.unlisted_requests() == []
    cloud.graph.reset_grants()  # a warning: only a run that borrows one of them is refused (below)
    code, out, err = run(capsys, "doctor", "--json")
    grants = {c["name"]: c for c in json.loads(out)["checks"]}["graph grants"]
    assert code == 0 and grants["ok"] and grants["warning"]
    assert grants["detail"].startswith(f"{GROUPS} slot 0 lacks AdministrativeUnit.Read.All, Group.Create, Group.Read.All, User.Read.All "
                                       "(Graph knows no service principal graph-principal-0")
    assert "`haymaker platform grants -e dev`" in grants["fix"]


def test_doctor_names_a_catalog_role_the_deployers_condition_does_not_allow_yet(online, capsys):
    """A scenario gained a role: the condition a person granted must allow it, and doctor (so `up`) says so."""
    from components.roles import BUILTIN_ROLES
    from haymaker import trust

    cloud = online[0]
    custom = "5d1b6c3e-0000-4000-8000-0000000c0570"
    cloud.arm.custom_roles[custom] = "HayMaker run deployer (dev)"
    table = trust.load_table("dev")
    dropped = sorted(table.catalog_roles)[0]
    older = trust.role_assignment_condition([BUILTIN_ROLES[r].guid for r in table.catalog_roles - {dropped}])
    cloud.arm.role_assignments = [(DEPLOYER_OID, custom, older)]
    code, out, err = run(capsys, "doctor", "--json")
    rbac = {c["name"]: c for c in json.loads(out)["checks"]}["rbac rights"]
    assert code == 1 and not rbac["ok"]
    assert rbac["detail"] == (f"HayMaker run deployer (dev): its role assignment condition does not allow {dropped}, "
                              "which the catalog's scenarios hold")
    assert "step 4" in rbac["fix"]
    cloud.arm.role_assignments = [(DEPLOYER_OID, custom)]  # no condition at all: never accepted
    code, out, err = run(capsys, "doctor", "--json")
    rbac = {c["name"]: c for c in json.loads(out)["checks"]}["rbac rights"]
    assert code == 1 and rbac["detail"] == ("HayMaker run deployer (dev): its role assignment has no condition: it "
                                            "could assign any role")


def test_the_reaper_reaps_its_own_environments_runs_and_refuses_what_it_cannot_tell_is_a_run(online, capsys):
    """Stacks of another project and of another environment are not this reaper's; a stack whose name is no
    run id, or that has no tags, is refused and reported, and nothing of it changes."""
    cloud, pulumi, _ = online
    expired = {"haymaker:kind": "run", "haymaker:expires": "2026-11-21T10:00:00Z", "haymaker:trigger": "schedule"}
    mine, theirs, other_project = "20261121t0600z-0d01", "20261121t0600z-0b01", "20261121t0600z-0c01"
    pulumi.add_stack(f"run-{mine}", {**expired, "haymaker:env": "dev"})
    pulumi.add_stack(f"run-{theirs}", {**expired, "haymaker:env": "prod"})
    pulumi.add_stack(f"run-{other_project}", {**expired, "haymaker:env": "dev"}, project="billing")
    pulumi.add_stack("run-not-a-run", {**expired, "haymaker:env": "dev"})
    pulumi.add_stack("run-20261121t0600z-0e01", {})  # `up` died between creating the stack and tagging it
    cloud.arm.add_group(f"haymaker-{theirs}-{VM}", {"haymaker-run": theirs, "haymaker-env": "prod"})
    code, out, err = run(capsys, "reap", "--json", "--now", "2026-11-22T00:00:00Z")
    results = {r["run_id"]: r for r in json.loads(out)}
    assert code == 3, err  # the refusals need a person
    assert set(results) == {mine, "run-not-a-run", "20261121t0600z-0e01"}
    assert results[mine]["outcome"] == "verified"
    assert results["run-not-a-run"]["outcome"] == "refused"
    assert "its name is not run-<run id>" in results["run-not-a-run"]["error"]
    assert results["20261121t0600z-0e01"]["outcome"] == "refused"
    assert "has no tags, so its environment is unknown: nothing was changed" in results["20261121t0600z-0e01"]["error"]
    touched = [c for c in pulumi.calls() if c[:1] == ["destroy"] or c[:2] == ["stack", "rm"]]
    assert all(f"run-{mine}" in c for c in touched) and touched
    assert {"run-not-a-run", f"run-{theirs}", "run-20261121t0600z-0e01"} <= set(pulumi.state["stacks"])
    assert pulumi.store.get(f"billing/run-{other_project}") is not None
    assert f"haymaker-{theirs}-{VM}".lower() in cloud.arm.groups  # prod's run is prod's reaper's
    assert any(c[:2] == ["stack", "output"] and "dev" in c for c in pulumi.calls())  # the environment's platform


@pytest.mark.parametrize("tags, says", [
    ({"haymaker:env": "prod"}, "belongs to environment prod: tear it down there (`haymaker down 20261121t0600z-0b02 -e prod`)"),
    ({}, "has no haymaker:env tag, so its environment is unknown: nothing was changed"),
], ids=["another-environment", "no-tags"])
def test_down_refuses_a_stack_it_cannot_tell_is_of_its_environment(online, capsys, tags, says):
    cloud, pulumi, _ = online
    run_id = "20261121t0600z-0b02"
    pulumi.add_stack(f"run-{run_id}", tags)
    cloud.arm.add_group(f"haymaker-{run_id}-{VM}", {"haymaker-run": run_id, "haymaker-env": "prod"})
    code, out, err = run(capsys, "down", run_id, "--yes", "--json")
    assert code == 2 and says in err, err
    assert f"run-{run_id}" in pulumi.state["stacks"] and not [c for c in pulumi.calls() if c[:1] == ["destroy"]]
    assert not cloud.arm.seen("DELETE") and not cloud.graph.seen("DELETE")


def test_down_ends_failed_with_the_reason_when_sign_in_is_refused_mid_way(online, capsys):
    """Entra stops issuing tokens during the teardown (the cached one expired, the client assertion is refused):
    `down` reports `failed` with the reason on stderr and in the JSON, the ledger says so, and the stack stays."""
    import time

    from haymaker.ledger import RunRecord
    from haymaker.runspec import check_run_id

    cloud, pulumi, _ = online
    run_id = "20261121t0600z-0d0d"
    started = check_run_id(run_id)
    Ledger.from_config(_cfg()).upsert_run(RunRecord(run_id, "dev", "schedule", "running", started,
                                                    started + timedelta(hours=2), [VM], 2))
    pulumi.add_stack(f"run-{run_id}", {"haymaker:env": "dev", "haymaker:expires": "2026-11-21T08:00:00Z"})
    cloud.graph.add("applications", f"haymaker-{run_id}-{VM}")
    cloud.login.token_lifetime = 1

    def expire():
        cloud.login.refuse[cloud.graph.base_url] = aad_error(
            700024, "invalid_client", "Client assertion is not within its valid time range.")
        time.sleep(1.1)

    cloud.graph.when("DELETE", "/applications/", expire)
    code, out, err = run(capsys, "down", run_id, "--yes", "--json")
    (result,) = json.loads(out)
    assert code == 3 and "Traceback" not in err, err
    assert result["outcome"] == "failed" and "AADSTS700024" in result["error"]
    assert "AADSTS700024" in err
    assert Ledger.from_config(_cfg()).get_run(run_id).status == "teardown_failed"
    assert f"run-{run_id}" in pulumi.state["stacks"]


# --- defect 2: a stack lock is looked at, never waited on; a stale one is cleared, a young one reported ---

EXPIRED_DEV = {"haymaker:kind": "run", "haymaker:env": "dev", "haymaker:expires": "2026-11-21T08:00:00Z",
               "haymaker:trigger": "schedule"}


@pytest.mark.parametrize("backend, age, outcome", [
    ("file", timedelta(hours=3), "forced"),  # a reaper killed at its job timeout, hours ago: cleared
    ("file", timedelta(minutes=10), "locked"),  # an update that may still be running: reported
    ("cloud", timedelta(hours=3), "locked"),  # Pulumi Cloud's 409 says no age: never cleared blindly
], ids=["stale-file-lock", "young-file-lock", "pulumi-cloud-409"])
def test_a_locked_run_stack_is_cleared_when_stale_and_reported_locked_otherwise(online, capsys, monkeypatch, backend,
                                                                               age, outcome):
    from haymaker.ledger import RunRecord
    from haymaker.runspec import check_run_id

    cloud, pulumi, _ = online
    if backend == "cloud":
        monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
        monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "pul-test-only")
    run_id = "20261121t0600z-10c4"
    started = check_run_id(run_id)
    Ledger.from_config(_cfg()).upsert_run(RunRecord(run_id, "dev", "schedule", "running", started,
                                                    started + timedelta(hours=2), [VM], 2))
    pulumi.add_stack(f"run-{run_id}", EXPIRED_DEV)
    lock = pulumi.leave_lock(f"run-{run_id}", age)
    cloud.arm.add_group(f"haymaker-{run_id}-{VM}", {"haymaker-run": run_id, "haymaker-env": "dev"})
    code, out, err = run(capsys, "reap", "--json", "--now", "2026-11-22T00:00:00Z")
    (result,) = json.loads(out)
    assert result["outcome"] == outcome, result
    ledger = Ledger.from_config(_cfg())
    cancels = [c for c in pulumi.calls() if c[:1] == ["cancel"]]
    if outcome == "locked":
        assert code == 3  # counted in the exit status, so the orphans issue carries it
        assert "locked" in result["error"] and "pulumi cancel" in result["error"] and "locked" in err
        assert cancels == [] and lock.exists()  # nobody's lock is broken while it may be in use
        assert f"haymaker-{run_id}-{VM}".lower() in cloud.arm.groups  # nothing deleted under a running update
        assert ledger.get_run(run_id).status == "locked"
        assert len([c for c in pulumi.calls() if c[:1] == ["destroy"]]) == 1  # looked at once, not waited on
    else:
        assert code == 0 and len(cancels) == 1 and not pulumi.locks(f"run-{run_id}")
        assert f"run-{run_id}" not in pulumi.state["stacks"]
        assert ledger.get_run(run_id).status == "forced"
        events = [e for e in ledger.list_events(run_id) if e["kind"] == "lock-cleared"]
        assert len(events) == 1 and events[0]["data"]["locked_at"]


def test_a_pulumi_destroy_that_outlives_the_budget_ends_the_teardown_failed_before_the_job_times_out(online, capsys):
    """The provider follows a delete that never ends (a VPN gateway's group): `down` stops watching once three
    quarters of its budget are spent and reports, rather than being killed by the job's timeout with no report."""
    import time

    cloud, pulumi, _ = online
    run_id = "20261121t0600z-0e0e"
    group = f"haymaker-{run_id}-networking-02-vpn-gateway"
    cloud.arm.add_group(group, {"haymaker-run": run_id, "haymaker-env": "dev"})
    cloud.arm.delete_plans[group.lower()] = ("InProgress", None, None)
    token = jwt({"appid": DEPLOYER_CLIENT_ID, "roles": []})
    pulumi.add_stack(f"run-{run_id}", EXPIRED_DEV, resources=[{"urn": "urn:pulumi:x::haymaker::rg", "type": "rg"}])
    pulumi.script(f"run-{run_id}", deletes=[{"url": f"{cloud.arm.base_url}/subscriptions/{cloud.arm.subscription_id}/"
                                                    f"resourcegroups/{group}?api-version=2025-04-01", "token": token}])
    code, out, err = run(capsys, "down", run_id, "--yes", "--json")
    (result,) = json.loads(out)
    assert code == 3 and result["outcome"] == "failed", result
    assert result["error"].startswith(f"`pulumi destroy` of run-{run_id} was still running when the teardown's budget "
                                      "(20 min, HAYMAKER_TEARDOWN_BUDGET_MINUTES) was three quarters spent")
    assert "Traceback" not in err and "still running" in err
    cloud.arm.end_operations()  # the gateway's delete ends at last: the abandoned `pulumi destroy` finishes
    for _ in range(600):
        if not pulumi.locks(f"run-{run_id}"):
            break
        time.sleep(0.1)
    assert not pulumi.locks(f"run-{run_id}")


def test_the_teardown_budget_ends_the_reap_before_its_job_times_out():
    from pathlib import Path

    import yaml

    reap = yaml.safe_load((Path(__file__).resolve().parents[1] / ".github" / "workflows" / "reap.yml").read_text())
    job = reap["jobs"]["reap"]
    budget = int(job["env"]["HAYMAKER_TEARDOWN_BUDGET_MINUTES"])
    assert budget + 3 <= int(job["timeout-minutes"])  # minutes left to write the report and keep it


# --- defect 4: deleted objects that show up late are purged by a later reap, even with the stack gone ---------

def test_a_purge_still_pending_is_recorded_and_a_later_reap_purges_it_with_the_stack_gone(online, capsys):
    from haymaker.ledger import RunRecord
    from haymaker.runspec import check_run_id

    cloud, pulumi, _ = online
    cloud.graph.deleted_items_lag = 2 * 3600.0  # longer than the purge waits, and than the reap's budget
    run_id = "20261121t0600z-0f0f"
    started = check_run_id(run_id)
    Ledger.from_config(_cfg()).upsert_run(RunRecord(run_id, "dev", "schedule", "running", started,
                                                    started + timedelta(hours=2), [VM], 2))
    app = cloud.graph.add("applications", f"haymaker-{run_id}-{VM}")
    sp = cloud.graph.add("servicePrincipals", f"haymaker-{run_id}-{VM}", appId=app["appId"])
    token = jwt({"appid": DEPLOYER_CLIENT_ID, "roles": ["Application.ReadWrite.OwnedBy", "Application.Read.All"]})
    pulumi.add_stack(f"run-{run_id}", EXPIRED_DEV, outputs={"inventory": [
        {"scenario": VM, "client_id": app["appId"], "service_principal_object_id": sp["id"]}]})
    pulumi.script(f"run-{run_id}", deletes=[{"url": f"{cloud.graph.base_url}/v1.0/applications/{app['id']}",
                                             "token": token}])
    code, out, err = run(capsys, "reap", "--json", "--now", "2026-11-22T00:00:00Z")
    (result,) = json.loads(out)
    assert code == 0 and result["outcome"] == "verified", (err, result)
    pending = {(x["kind"], x["id"] or x["name"]) for x in result["pending"]}
    assert {k for k, _ in pending} == {"deleted_application", "deleted_service_principal"}
    assert ("deleted_service_principal", sp["id"]) in pending  # by id, or by name when only that is known
    assert f"run-{run_id}" not in pulumi.state["stacks"]  # nothing live is left: the stack goes
    ledger = Ledger.from_config(_cfg())
    assert ledger.get_run(run_id).resources_orphaned == len(result["pending"])
    assert [e["kind"] for e in ledger.list_events(run_id)][-1] == "pending-purge"

    cloud.time.sleep(3 * 3600.0)  # the next reaps, hours later: deleted items show them now
    cloud.borrowable_identity("graph-identity-0", ["Group.Create", "Group.Read.All", "User.Read.All"])
    cloud.graph.add_deleted("groups", f"haymaker-{run_id}-lift-operations", owner="graph-identity-0")
    code, out, err = run(capsys, "reap", "--json", "--now", "2026-11-22T03:00:00Z")
    (result,) = json.loads(out)
    assert code == 0 and (result["run_id"], result["outcome"], result["pending"]) == (run_id, "verified", []), err
    assert (f"soft-deleted directory objects (each counts against its creator's quota until purged): deployer 0/250, "
            f"{GROUPS} identities 1/250") in err
    assert sorted(x["kind"] for x in result["purged"]) == ["deleted_application", "deleted_service_principal"]
    assert [o["displayName"] for o in cloud.graph.deleted.values()] == [f"haymaker-{run_id}-lift-operations"]
    assert Ledger.from_config(_cfg()).get_run(run_id).resources_orphaned == 0
    code, out, _ = run(capsys, "reap", "--json", "--now", "2026-11-22T03:30:00Z")
    assert json.loads(out) == []  # finished: not resumed again
