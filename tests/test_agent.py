"""ScenarioAgent: the resources one scenario gets, and their properties."""

from __future__ import annotations

import json
from dataclasses import replace

import pulumi
import pytest

from haymaker.mockrun import PlanMocks
from components.agent import SECRET_NAME, BorrowedIdentity, ScenarioAgent, ScenarioAgentArgs
from components.roles import BUILTIN_ROLES
from haymaker.errors import InvalidInput
from haymaker.mockrun import MOCK_DEPLOYER_OBJECT_ID, is_secret, unwrap
from haymaker.plan import platform_outputs_offline
from tests.conftest import RUN_ID, utc

VM = "compute-01-linux-vm-web-server"
RG = "azure-native:resources:ResourceGroup"
JOB = "azure-native:app:Job"
RA = "azure-native:authorization:RoleAssignment"
APP = "azuread:index/application:Application"
SP = "azuread:index/servicePrincipal:ServicePrincipal"
PWD = "azuread:index/applicationPassword:ApplicationPassword"
GRAPH = "azuread:index/appRoleAssignment:AppRoleAssignment"


@pytest.fixture
def vm_run(declare, make_spec):
    return declare(make_spec([VM], duration_hours=6))


def test_children_named_after_the_scenario_and_parented_to_it(vm_run):
    children = [r for r in vm_run.resources if r.custom and r.name != "run-rg"]
    assert {r.name for r in children} == {
        f"{VM}-rg", f"{VM}-app", f"{VM}-sp", f"{VM}-credential", f"{VM}-job",
        f"{VM}-role-virtual-machine-contributor", f"{VM}-role-network-contributor"}
    assert all(r.parent.endswith(f"haymaker:index:ScenarioAgent::{VM}") for r in children)


def test_resource_group_and_entra_names_derive_from_the_run(vm_run, settings):
    rg = vm_run.one(RG, f"{VM}-rg").inputs
    assert rg["resourceGroupName"] == f"haymaker-{RUN_ID}-{VM}"
    assert rg["location"] == settings.location
    assert vm_run.one(APP).inputs["displayName"] == f"haymaker-{RUN_ID}-{VM}"
    # The run deployer and the environment's reaper (the platform's reaperObjectId): the reaper deletes what it owns.
    reaper = platform_outputs_offline("dev")["reaperObjectId"]
    assert vm_run.one(APP).inputs["owners"] == [MOCK_DEPLOYER_OBJECT_ID, reaper]
    assert vm_run.one(SP).inputs["owners"] == [MOCK_DEPLOYER_OBJECT_ID, reaper]


def test_every_taggable_resource_carries_the_five_tags(vm_run):
    expected = {"AzureHayMaker-managed": "true", "haymaker-run": RUN_ID, "haymaker-scenario": VM,
                "haymaker-env": "dev", "haymaker-expires": "2026-11-21T12:00:00Z"}
    for token in (RG, JOB):
        for r in vm_run.of_type(token):
            scenario = VM if r.name.startswith(VM) else "run"
            assert r.inputs["tags"] == {**expected, "haymaker-scenario": scenario}, r.name
    for token in (APP, SP):
        assert sorted(vm_run.one(token).inputs["tags"]) == sorted(f"{k}={v}" for k, v in expected.items())
    # Role assignments and credentials take no tags; the transform must leave them alone.
    assert all("tags" not in r.inputs for r in vm_run.of_type(RA) + vm_run.of_type(PWD))


def test_role_assignments_are_scoped_to_the_agents_resource_group_only(vm_run):
    rg = vm_run.one(RG, f"{VM}-rg")
    sp = vm_run.one(SP)
    assignments = vm_run.of_type(RA)
    assert len(assignments) == 2
    for ra in assignments:
        assert ra.inputs["scope"] == rg.id
        assert ra.inputs["principalId"] == sp.outputs["objectId"]
        assert ra.inputs["principalType"] == "ServicePrincipal"
    guids = {ra.inputs["roleDefinitionId"].rsplit("/", 1)[1] for ra in assignments}
    assert guids == {BUILTIN_ROLES["Virtual Machine Contributor"].guid, BUILTIN_ROLES["Network Contributor"].guid}
    assert all(ra.inputs["roleDefinitionId"].startswith("/subscriptions/") for ra in assignments)


def test_credential_ends_at_expiry_plus_grace_and_is_secret(vm_run):
    cred = vm_run.one(PWD)
    # started 06:00, 6 h, grace 60 min in Pulumi.dev.yaml
    assert cred.inputs["endDate"] == "2026-11-21T13:00:00Z"
    assert cred.inputs["applicationId"] == vm_run.one(APP).id
    assert is_secret(cred.outputs["value"])


def test_job_timeout_start_size_and_image(vm_run, settings):
    job = vm_run.one(JOB).inputs
    cfg = unwrap(job["configuration"])
    assert cfg["replicaTimeout"] == 6 * 3600 + 30 * 60
    assert cfg["triggerType"] == "Schedule"
    # starts by itself once, 15 minutes after the run starts (startDelayMinutes in Pulumi.dev.yaml)
    assert cfg["scheduleTriggerConfig"] == {"cronExpression": "15 6 21 11 *", "parallelism": 1,
                                            "replicaCompletionCount": 1}
    assert cfg["replicaRetryLimit"] == 1
    assert job["resourceGroupName"] == f"haymaker-{RUN_ID}-run"
    assert job["environmentId"].endswith("/haymaker-dev-platform/providers/Microsoft.App/managedEnvironments/haymaker-dev")
    (container,) = job["template"]["containers"]
    assert container["image"] == settings.agent_image
    assert container["resources"] == {"cpu": 0.5, "memory": "1Gi"}
    assert "ingress" not in json.dumps(job)
    # the image is pulled with the platform's AcrPull identity, never a registry password
    pull = "/subscriptions/00000000-0000-0000-0000-00000000bbbb/resourceGroups/haymaker-dev-platform/providers/" \
           "Microsoft.ManagedIdentity/userAssignedIdentities/haymaker-dev-agent-pull"
    assert job["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [pull]}
    assert cfg["registries"] == [{"server": "haymakerdev.azurecr.io", "identity": pull}]


def test_secret_reaches_the_job_only_by_reference(vm_run):
    job = vm_run.one(JOB)
    # The engine sees the whole configuration as secret because it holds the credential.
    assert is_secret(job.inputs["configuration"])
    (secret,) = unwrap(job.inputs["configuration"])["secrets"]
    credential = unwrap(vm_run.one(PWD).outputs["value"])
    assert secret == {"name": SECRET_NAME, "value": credential}
    env = {e["name"]: e for e in job.inputs["template"]["containers"][0]["env"]}
    assert env["AZURE_CLIENT_SECRET"] == {"name": "AZURE_CLIENT_SECRET", "secretRef": SECRET_NAME}
    assert credential not in json.dumps(job.inputs["template"])
    assert {n: env[n]["value"] for n in ("HAYMAKER_RUN_ID", "HAYMAKER_SCENARIO", "HAYMAKER_EXPIRES_AT")} == {
        "HAYMAKER_RUN_ID": RUN_ID, "HAYMAKER_SCENARIO": VM, "HAYMAKER_EXPIRES_AT": "2026-11-21T12:00:00Z"}
    assert env["AZURE_CLIENT_ID"]["value"] == vm_run.one(APP).outputs["clientId"]
    assert {"AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "HAYMAKER_RESOURCE_GROUP"} <= set(env)


def test_job_waits_for_the_agents_roles(vm_run):
    job = vm_run.one(JOB)
    for ra in vm_run.of_type(RA):
        assert ra.urn in job.dependencies


GROUPS = "identity-03-entra-users-groups"


def _graph_identity(env: str, slot: int) -> dict:
    from haymaker.graphlease import offline_graph_identities
    from haymaker.mockrun import MOCK_SUBSCRIPTION_ID

    return offline_graph_identities(env, MOCK_SUBSCRIPTION_ID)[GROUPS]["identities"][slot]


def test_graph_scenario_borrows_its_leased_platform_identity_and_grants_no_graph_role(declare, make_spec):
    run = declare(replace(make_spec([VM, GROUPS]), graph_leases={GROUPS: 2}))
    borrowed = _graph_identity("dev", 2)
    # No Graph app role assignment (it needs AppRoleAssignment.ReadWrite.All), and no Entra app of its own.
    assert run.of_type(GRAPH) == []
    assert [r.name for r in run.of_type(APP) + run.of_type(SP) + run.of_type(PWD)] == [
        f"{VM}-app", f"{VM}-sp", f"{VM}-credential"]
    job = run.one(JOB, f"{GROUPS}-job").inputs
    assert job["identity"]["userAssignedIdentities"][1:] == [borrowed["id"]]
    config = unwrap(job["configuration"])
    assert not config.get("secrets") and not is_secret(job["configuration"])
    env = {e["name"]: e.get("value") for e in job["template"]["containers"][0]["env"]}
    assert "AZURE_CLIENT_SECRET" not in env
    assert (env["AZURE_CLIENT_ID"], env["HAYMAKER_AGENT_OBJECT_ID"], env["HAYMAKER_LOGIN"]) == (
        borrowed["clientId"], borrowed["principalId"], "managed-identity")
    # Its Azure roles: on this run's group of the scenario only, like any agent's.
    assignments = [ra for ra in run.of_type(RA) if ra.name.startswith(GROUPS)]
    assert {ra.inputs["principalId"] for ra in assignments} == {borrowed["principalId"]}
    assert {ra.inputs["scope"] for ra in assignments} == {run.one(RG, f"{GROUPS}-rg").id}
    entry = next(e for e in run.outputs["inventory"] if e["scenario"] == GROUPS)
    assert (entry["client_id"], entry["service_principal_object_id"]) == (borrowed["clientId"], borrowed["principalId"])
    own = {e["name"]: e.get("value") for e in run.one(JOB, f"{VM}-job").inputs["template"]["containers"][0]["env"]}
    assert own["HAYMAKER_LOGIN"] == "service-principal"
    assert own["HAYMAKER_AGENT_OBJECT_ID"] == run.one(SP).outputs["objectId"]


def test_an_offline_plan_borrows_slot_zero(declare, make_spec):
    run = declare(make_spec([GROUPS]))
    env = {e["name"]: e.get("value") for e in run.one(JOB).inputs["template"]["containers"][0]["env"]}
    assert env["AZURE_CLIENT_ID"] == _graph_identity("dev", 0)["clientId"]


@pytest.mark.parametrize("pools, lease, message", [
    ({}, 0, "the platform provides no Graph identity for it: release the platform"),
    ({GROUPS: {"permissions": ["Group.Create"], "identities": [{"id": "i", "clientId": "c", "principalId": "p"}]}},
     0, "its platform identity lacks AdministrativeUnit.Read.All, Group.Read.All, User.Read.All: release the platform"),
    (None, 3, "leased slot 3 but the platform has 3 identities"),
])
def test_a_platform_that_cannot_lend_the_identity_is_refused_with_what_to_do(
        fixture_catalog, settings, make_spec, pools, lease, message):
    from haymaker.mockrun import evaluate
    from haymaker.plan import platform_outputs_offline
    from stacks.run import run_program

    spec = replace(make_spec([GROUPS]), graph_leases={GROUPS: lease})
    outputs = platform_outputs_offline("dev", fixture_catalog)
    if pools is not None:
        outputs["graphIdentities"] = pools
    with pytest.raises(InvalidInput, match=message):
        evaluate(lambda: run_program(spec, settings, fixture_catalog), project="haymaker", stack=spec.stack_name,
                 platform_outputs=outputs)


def _args(**over):
    base = dict(run_id=RUN_ID, environment="dev", scenario=VM, azure_roles=("Reader",), location="swedencentral",
                agent_image="haymakerdev.azurecr.io/haymaker-agent:0.1.0", duration_hours=8,
                expires_at=utc(2026, 11, 21, 14), start_at=utc(2026, 11, 21, 6, 15),
                managed_environment_id="env", job_resource_group_name="rg", tenant_id="t",
                subscription_id="s", owner_object_id="o")
    return ScenarioAgentArgs(**{**base, **over})


@pytest.mark.parametrize("over, message", [
    (dict(azure_roles=("Owner",)), "may not hold 'Owner'"),
    (dict(azure_roles=("User Access Administrator",)), "may not hold"),
    (dict(azure_roles=("Chief Wizard",)), "unknown role 'Chief Wizard'"),
    (dict(azure_roles=()), "at least one Azure role"),
    (dict(duration_hours=11), "outside 1-10 h"),
    (dict(graph_permissions=("Directory.ReadWrite.All",)), "unknown Graph permission"),
    (dict(graph_permissions=("Group.Create",)), "need an identity borrowed from the platform"),
    (dict(borrowed_identity=BorrowedIdentity("i", "c", "p")), "only Graph scenarios borrow"),
    (dict(run_id="nope"), "run id 'nope' is not valid"),
])
def test_bad_args_are_refused_before_any_resource_is_declared(declare, make_spec, over, message):
    with pytest.raises(InvalidInput, match=message):
        declare(make_spec([VM]), program=lambda: ScenarioAgent(VM, _args(**over)))


@pulumi.runtime.test
def test_component_outputs_are_the_childrens():

    pulumi.runtime.set_mocks(PlanMocks(), project="haymaker", stack=f"run-{RUN_ID}")
    agent = ScenarioAgent(VM, _args())

    def check(values):
        rg_name, rg_id, job_name, client_id = values
        assert rg_name == f"haymaker-{RUN_ID}-{VM}"
        assert rg_id.endswith(f"/resourceGroups/{rg_name}")
        assert job_name == agent_args.job_name
        assert client_id

    agent_args = _args()
    return pulumi.Output.all(agent.resource_group_name, agent.resource_group_id, agent.job_name,
                             agent.client_id).apply(check)
