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
from tests.fakes.cloud import DEPLOYER_CLIENT_ID
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
    graph_identities = {GROUPS: {"permissions": ["Group.Create", "Group.Read.All", "User.Read.All"],
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
        cloud.arm.add_group(g, {"haymaker-run": run_id, "AzureHayMaker-managed": "true"})
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
    cloud.graph.add("groups", f"haymaker-{run_id}-lift-operations", owner="graph-identity-0")

    code, out, err = run(capsys, "down", run_id, "--yes", "--json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["outcome"] == "forced" and result["destroyed"] is True, result
    assert result["by_kind"]["group"] == {"found": 1, "remaining": 0, "purged": 0}
    assert result["by_kind"]["deleted_application"]["purged"] == 1
    assert result["by_kind"]["deleted_group"] == {"found": 0, "remaining": 0, "purged": 0, "retained": 1}
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
    cloud.arm.add_group(f"haymaker-{run_id}-vm", {"haymaker-run": run_id})  # unless something is left
    code, out, _ = run(capsys, "down", run_id, "--yes", "--json")
    assert json.loads(out)[0]["outcome"] == "forced" and f"haymaker-{run_id}-vm" not in cloud.arm.groups


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
    assert f"{GROUPS} slot 0 lacks Group.Create, Group.Read.All, User.Read.All" in err
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
    assert grants["detail"].startswith(f"{GROUPS} slot 0 lacks Group.Create, Group.Read.All, User.Read.All "
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
