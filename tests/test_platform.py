"""The platform program (stacks dev, staging, prod) under mocks: what it declares, its rights, its outputs."""

from __future__ import annotations

import json
import re

import pulumi
import pytest
import yaml

from components.deployer import (GITHUB_AUDIENCE, GITHUB_ISSUER, agent_roles_condition, assignable_role_guids,
                                 check_deployer_inputs)
from components.platform import (LEDGER_TABLES, ActivityLogExport, ActivityLogExportArgs, PlatformEnvironment,
                                 PlatformEnvironmentArgs, ledger_account_name, platform_tags, registry_name_of)
from components.graphidentity import GraphIdentities, GraphIdentitiesArgs
from components.roles import BUILTIN_ROLES, GRAPH_APP_ROLES, GRAPH_ESCALATION_ROLES, PRIVILEGED_ROLE_GUIDS
from components.tags import tags_kind
from haymaker.errors import InvalidInput
from haymaker.mockrun import (MOCK_DEPLOYER_OBJECT_ID, MOCK_GRAPH_SP_OBJECT_ID, MOCK_SUBSCRIPTION_ID, MOCK_TENANT_ID,
                              PlanMocks, RecordingMonitor, evaluate, is_secret, unwrap)
from haymaker.policycheck import load_policy_config
from haymaker.settings import REPO_ROOT, load_environment
from stacks.config import PLATFORM_STACKS, PlatformSettings, load_platform_settings
from tests.conftest import Declared

ENVS = ("dev", "staging", "prod")
SUB = f"/subscriptions/{MOCK_SUBSCRIPTION_ID}"
RG = "azure-native:resources:ResourceGroup"
WS = "azure-native:operationalinsights:Workspace"
MENV = "azure-native:app:ManagedEnvironment"
SA = "azure-native:storage:StorageAccount"
TABLE = "azure-native:storage:Table"
CONTAINER = "azure-native:storage:BlobContainer"
ACR = "azure-native:containerregistry:Registry"
UAMI = "azure-native:managedidentity:UserAssignedIdentity"
RA = "azure-native:authorization:RoleAssignment"
LOCK = "azure-native:authorization:ManagementLockAtResourceGroupLevel"
APP = "azuread:index/application:Application"
SP = "azuread:index/servicePrincipal:ServicePrincipal"
FIC = "azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential"
GRAPH = "azuread:index/appRoleAssignment:AppRoleAssignment"
DIAG = "azure-native:monitor:SubscriptionDiagnosticSetting"
FEDCRED = "azure-native:managedidentity:FederatedIdentityCredential"
OUTPUTS = {"graphIdentities", "managedEnvironmentId", "resourceGroupName", "logAnalyticsWorkspaceId", "ledgerTableEndpoint",
           "reportsContainerUrl", "deployerClientId", "tenantId", "subscriptionId", "acrLoginServer",
           "agentPullIdentityId", "agentPullIdentityClientId"}


async def _secret_flags(outputs: dict) -> dict:
    return {k: await pulumi.Output.from_input(v).is_secret() for k, v in outputs.items()}


def _evaluate(settings: PlatformSettings) -> Declared:
    from stacks.platform import platform_program

    def program():
        outputs = platform_program(settings)
        return {"outputs": outputs, "secret": _secret_flags(outputs)}

    resources, result = evaluate(program, project="haymaker", stack=settings.name)
    declared = Declared(resources, result["outputs"])
    declared.secret_outputs = {k for k, secret in result["secret"].items() if secret}
    return declared


@pytest.fixture(scope="module")
def platforms():
    return {env: _evaluate(load_platform_settings(env)) for env in ENVS}


@pytest.fixture
def dev(platforms):
    return platforms["dev"]


def _assignment(platform, name):
    return platform.one(RA, name).inputs


def _role(assignment) -> str:
    return assignment["roleDefinitionId"].rsplit("/", 1)[1]


# --- structure ------------------------------------------------------------------------------------

def test_components_parent_every_resource_and_name_children_after_themselves(dev):
    components = {r.name: r for r in dev.resources if not r.custom}
    assert {r.type for r in components.values()} == {
        "haymaker:platform:Environment", "haymaker:platform:Ledger", "haymaker:platform:AgentRegistry",
        "haymaker:platform:DeploymentIdentity", "haymaker:platform:ActivityLogExport",
        "haymaker:platform:GraphIdentities"}
    for r in dev.resources:
        if r.custom:
            owner = r.parent.rsplit("::", 1)[1]
            assert owner in components and r.name.startswith(f"{owner}-"), r.name


@pytest.mark.parametrize("env", ENVS)
def test_physical_names_derive_from_the_environment(platforms, env):
    p, settings = platforms[env], load_environment(env)
    rg = p.one(RG).inputs
    assert rg["resourceGroupName"] == f"haymaker-{env}-platform" and rg["location"] == settings.location
    assert p.one(MENV).inputs["environmentName"] == f"haymaker-{env}"
    assert p.one(WS).inputs["workspaceName"] == f"haymaker-{env}-logs"
    account = p.one(SA).inputs["accountName"]
    assert re.fullmatch(r"[a-z0-9]{3,24}", account) and account == ledger_account_name(env, MOCK_SUBSCRIPTION_ID)
    assert p.one(ACR).inputs["registryName"] == f"haymaker{env}"
    assert all(r.inputs["location"] == settings.location for r in p.resources if "location" in r.inputs)
    assert all(r.inputs.get("resourceGroupName") == f"haymaker-{env}-platform"
               for r in p.resources if r.type in (WS, MENV, SA, ACR, UAMI))


def test_storage_account_names_are_deterministic_valid_and_distinct():
    names = {ledger_account_name(env, sub) for env in ("dev", "staging", "prod", "abcdefghij")
             for sub in (MOCK_SUBSCRIPTION_ID, "11111111-2222-3333-4444-555555555555")}
    assert len(names) == 8 and all(re.fullmatch(r"[a-z0-9]{3,24}", n) for n in names)
    assert ledger_account_name("dev", MOCK_SUBSCRIPTION_ID) == ledger_account_name("dev", MOCK_SUBSCRIPTION_ID)


def test_resource_group_is_locked_against_deletion(dev):
    lock = dev.one(LOCK).inputs
    assert lock["level"] == "CanNotDelete" and lock["resourceGroupName"] == "haymaker-dev-platform"


# --- logs and the Container Apps environment -----------------------------------------------------

@pytest.mark.parametrize("env, days", [("dev", 30), ("prod", 90)])
def test_workspace_sku_and_retention(platforms, env, days):
    ws = platforms[env].one(WS).inputs
    assert ws["sku"] == {"name": "PerGB2018"} and ws["retentionInDays"] == days


def test_managed_environment_is_consumption_and_logs_to_the_workspace_with_a_secret_key(dev):
    env = dev.one(MENV)
    (profile,) = env.inputs["workloadProfiles"]
    assert (profile["name"], profile["workloadProfileType"]) == ("Consumption", "Consumption")
    assert is_secret(env.inputs["appLogsConfiguration"])
    logs = unwrap(env.inputs["appLogsConfiguration"])
    assert logs["destination"] == "log-analytics"
    assert logs["logAnalyticsConfiguration"]["customerId"] == dev.one(WS).outputs["customerId"]
    assert logs["logAnalyticsConfiguration"]["dynamicJsonColumns"] is False  # agent lines stay whole in Log_s
    key = logs["logAnalyticsConfiguration"]["sharedKey"]
    assert key.startswith("mock-workspace-key-")
    assert key not in json.dumps(unwrap(dev.outputs))
    assert dev.outputs["managedEnvironmentId"] == env.id
    assert env.id == f"{SUB}/resourceGroups/haymaker-dev-platform/providers/Microsoft.App/managedEnvironments/" \
                     "haymaker-dev"


@pytest.mark.parametrize("env", ENVS)
def test_subscription_activity_log_goes_to_the_environments_workspace(platforms, env):
    p = platforms[env]
    setting = p.one(DIAG)
    # Subscription scope: the setting lives on the platform's subscription, not in a resource group.
    assert setting.id == f"{SUB}/providers/Microsoft.Insights/diagnosticSettings/haymaker-{env}-activity-log"
    assert p.outputs["subscriptionId"] == MOCK_SUBSCRIPTION_ID and "resourceGroupName" not in setting.inputs
    assert setting.inputs["workspaceId"] == p.one(WS).id == p.outputs["logAnalyticsWorkspaceId"]
    assert setting.inputs["logs"] == [{"category": c, "enabled": True} for c in (
        "Administrative", "Security", "Policy", "Alert", "ServiceHealth", "ResourceHealth")]
    assert not {"storageAccountId", "eventHubAuthorizationRuleId", "marketplacePartnerId"} & set(setting.inputs)


def test_activity_log_categories_are_checked_before_anything_is_declared():
    raised, declared = _declared_before_failure(lambda: ActivityLogExport("activity-log", ActivityLogExportArgs(
        environment="dev", workspace_id="ws", categories=("Administrative", "Everything"))))
    assert "Activity Log categories ['Administrative', 'Everything']: use some of Administrative" in str(raised.value)
    assert declared == []


# --- ledger ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("env, sku", [("dev", "Standard_LRS"), ("staging", "Standard_LRS"), ("prod", "Standard_ZRS")])
def test_storage_account_is_locked_down(platforms, env, sku):
    sa = platforms[env].one(SA).inputs
    assert sa["kind"] == "StorageV2" and sa["sku"] == {"name": sku}
    assert sa["enableHttpsTrafficOnly"] is True
    assert sa["minimumTlsVersion"] == "TLS1_2"
    assert sa["allowBlobPublicAccess"] is False
    assert sa["allowSharedKeyAccess"] is False and sa["defaultToOAuthAuthentication"] is True


def test_ledger_tables_and_reports_container(dev):
    from haymaker.ledger import AGENTS, EVENTS, RUNS

    account = dev.one(SA).outputs["name"]
    tables = dev.of_type(TABLE)
    assert {t.inputs["tableName"] for t in tables} == set(LEDGER_TABLES) == {RUNS, AGENTS, EVENTS}
    container = dev.one(CONTAINER).inputs
    assert container["containerName"] == "reports" and container["publicAccess"] == "None"
    assert all(r.inputs["accountName"] == account for r in [*tables, dev.one(CONTAINER)])
    assert dev.outputs["ledgerTableEndpoint"] == f"https://{account}.table.core.windows.net"
    assert dev.outputs["reportsContainerUrl"] == f"https://{account}.blob.core.windows.net/reports"


# --- registry -------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_registry_is_basic_without_admin_user_and_matches_the_allowed_registry(platforms, env):
    p, settings = platforms[env], load_environment(env)
    acr = p.one(ACR).inputs
    assert acr["sku"] == {"name": "Basic"} and acr["adminUserEnabled"] is False
    assert p.outputs["acrLoginServer"] in settings.allowed_registries
    assert settings.agent_image.startswith(p.outputs["acrLoginServer"] + "/")


def test_agent_jobs_pull_with_an_identity_that_holds_acrpull_on_the_registry_only(dev):
    identity = dev.one(UAMI, "registry-pull-identity")
    pull = _assignment(dev, "registry-acrpull")
    assert pull["scope"] == dev.one(ACR).id and _role(pull) == BUILTIN_ROLES["AcrPull"].guid
    assert pull["principalId"] == identity.outputs["principalId"] and pull["principalType"] == "ServicePrincipal"
    assert dev.outputs["agentPullIdentityId"] == identity.id
    assert [a.name for a in dev.of_type(RA) if a.inputs["principalId"] == identity.outputs["principalId"]] == [
        "registry-acrpull"]


def test_no_registry_when_the_agent_image_is_not_in_an_acr():
    assert registry_name_of("haymakerdev.azurecr.io/haymaker-agent:0.1.0") == "haymakerdev"
    assert registry_name_of("ghcr.io/your-org/haymaker-agent:0.1.0") is None
    base = load_environment("dev")
    settings = PlatformSettings(
        environment=type(base)(**{**base.as_dict(), "allowed_locations": base.allowed_locations,
                                  "agent_image": "ghcr.io/your-org/haymaker-agent:0.1.0",
                                  "allowed_registries": ("ghcr.io",)}),
        github_repository="your-org/haymaker")
    p = _evaluate(settings)
    assert p.of_type(ACR) == [] and [u for u in p.of_type(UAMI) if u.name.startswith("registry-")] == []
    assert not {"acrLoginServer", "agentPullIdentityId"} & set(p.outputs)
    assert "deployer-acrpush" not in {a.name for a in p.of_type(RA)}


# --- the deployment identity ------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_github_environment_signs_in_through_a_federated_credential(platforms, env):
    p = platforms[env]
    # its own GitHub Environment, and the default branch the scheduled reaper runs on
    assert sorted(f.inputs["subject"] for f in p.of_type(FIC)) == [
        f"repo:your-org/haymaker:environment:{env}", "repo:your-org/haymaker:ref:refs/heads/main"]
    for fic in p.of_type(FIC):
        assert fic.inputs["issuer"] == GITHUB_ISSUER == "https://token.actions.githubusercontent.com"
        assert fic.inputs["audiences"] == [GITHUB_AUDIENCE] == ["api://AzureADTokenExchange"]
        assert fic.inputs["applicationId"] == p.one(APP).id
    assert p.outputs["deployerClientId"] == p.one(APP).outputs["clientId"]
    assert p.one(APP).inputs["displayName"] == f"haymaker-{env}-deployer"


def test_deployer_application_is_owned_by_the_platforms_deployer_not_by_itself(dev):
    assert dev.one(APP).inputs["owners"] == [MOCK_DEPLOYER_OBJECT_ID]
    assert dev.one(SP).inputs["owners"] == [MOCK_DEPLOYER_OBJECT_ID]
    assert "password" not in json.dumps([r.type.lower() for r in dev.resources])  # no secret credential at all


def test_deployer_holds_exactly_its_rights(dev):
    sp = dev.one(SP).outputs["objectId"]
    mine = [a for a in dev.of_type(RA) if a.inputs["principalId"] == sp]
    got = {(_role(a.inputs), a.inputs["scope"]) for a in mine}
    guid = lambda role: BUILTIN_ROLES[role].guid  # noqa: E731
    assert got == {
        (guid("Contributor"), SUB),
        (guid("Role Based Access Control Administrator"), SUB),
        (guid("Storage Table Data Contributor"), dev.one(SA).id),
        (guid("Storage Blob Data Contributor"), dev.one(CONTAINER).id),
        (guid("AcrPush"), dev.one(ACR).id),
    }
    assert all(a.inputs["principalType"] == "ServicePrincipal" for a in mine)
    assert all(a.inputs["roleDefinitionId"].startswith(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/")
               for a in mine)
    privileged = {g for g in PRIVILEGED_ROLE_GUIDS if g != guid("Role Based Access Control Administrator")}
    assert not any(_role(a.inputs) in privileged for a in dev.of_type(RA))  # never Owner or UAA
    # Only the RBAC Administrator assignment is conditioned, and it is the only privileged one.
    assert [a.name for a in mine if "condition" in a.inputs] == ["deployer-rbac-admin"]


def _guid_sets(condition: str) -> list[set[str]]:
    return [{g.strip() for g in body.split(",")} for body in re.findall(r"GuidEquals \{([^}]*)\}", condition)]


def test_rbac_administrator_may_only_assign_and_remove_the_agent_roles(dev):
    ra = _assignment(dev, "deployer-rbac-admin")
    condition = ra["condition"]
    assert ra["conditionVersion"] == "2.0"
    assert _role(ra) == BUILTIN_ROLES["Role Based Access Control Administrator"].guid and ra["scope"] == SUB
    agent_roles = {r.guid for r in BUILTIN_ROLES.values() if not r.privileged}
    assert _guid_sets(condition) == [agent_roles, agent_roles]
    for privileged in ("Owner", "User Access Administrator", "Role Based Access Control Administrator"):
        assert BUILTIN_ROLES[privileged].guid not in condition
    shape = re.escape(agent_roles_condition(["GUIDS"])).replace("GUIDS", "[0-9a-f, -]+")
    assert re.fullmatch(shape, condition)
    assert condition.startswith("((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
                                "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
                                "ForAnyOfAnyValues:GuidEquals {")
    assert ") AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR " \
           "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {" \
           in condition
    assert len(condition) <= 8192


def test_condition_follows_the_role_table():
    assert assignable_role_guids() == sorted(r.guid for r in BUILTIN_ROLES.values() if not r.privileged)
    assert _guid_sets(agent_roles_condition(["a", "b"])) == [{"a", "b"}, {"a", "b"}]
    with pytest.raises(InvalidInput, match="no assignable roles"):
        agent_roles_condition([])


def test_the_deployers_graph_permissions_are_owned_by_and_read_apps_only(dev):
    grants = [g for g in dev.of_type(GRAPH) if g.inputs["principalObjectId"] == dev.one(SP).outputs["objectId"]]
    assert sorted(g.inputs["appRoleId"] for g in grants) == sorted(
        GRAPH_APP_ROLES[p] for p in ("Application.ReadWrite.OwnedBy", "Application.Read.All"))
    assert {g.inputs["resourceObjectId"] for g in grants} == {MOCK_GRAPH_SP_OBJECT_ID}


# --- the Graph identities runs borrow ---------------------------------------------------------------

def _graph_identities(platform):
    return [u for u in platform.of_type(UAMI) if u.name.startswith("graph-")]


@pytest.mark.parametrize("env", ENVS)
def test_each_graph_scenario_gets_a_pool_of_identities_with_exactly_its_graph_roles(platforms, env, catalog):
    p, pool = platforms[env], load_platform_settings(env).graph_identity_pool_size
    needing = {s.name: s.graph_permissions for s in catalog.scenarios.values() if s.graph_permissions}
    exported = p.outputs["graphIdentities"]
    assert set(exported) == set(needing) and len(needing) == 5
    for scenario, permissions in needing.items():
        assert exported[scenario]["permissions"] == list(permissions)
        assert len(exported[scenario]["identities"]) == pool
        for slot, ident in enumerate(exported[scenario]["identities"]):
            (uami,) = [u for u in p.of_type(UAMI) if u.id == ident["id"]]
            assert uami.inputs["resourceName"] == f"haymaker-{env}-graph-{scenario}-{slot}"
            assert uami.inputs["resourceGroupName"] == f"haymaker-{env}-platform"
            assert (ident["clientId"], ident["principalId"]) == (uami.outputs["clientId"], uami.outputs["principalId"])
            grants = [g for g in p.of_type(GRAPH) if g.inputs["principalObjectId"] == ident["principalId"]]
            assert sorted(g.inputs["appRoleId"] for g in grants) == sorted(GRAPH_APP_ROLES[x] for x in permissions)
            assert all(g.inputs["resourceObjectId"] == MOCK_GRAPH_SP_OBJECT_ID for g in grants)
            # No Azure role here: each run grants its roles on that run's own group only.
            assert not [a for a in p.of_type(RA) if a.inputs["principalId"] == ident["principalId"]]
    principals = [i["principalId"] for e in exported.values() for i in e["identities"]]
    assert len(set(principals)) == len(principals) == len(needing) * pool


def test_graph_identities_trust_only_the_deployers_github_subjects_one_credential_at_a_time(dev):
    deployer_subjects = sorted(f.inputs["subject"] for f in dev.of_type(FIC))
    identities = _graph_identities(dev)
    assert identities
    for uami in identities:
        creds = [c for c in dev.of_type(FEDCRED) if c.inputs["resourceName"] == uami.outputs["name"]]
        assert sorted(c.inputs["subject"] for c in creds) == deployer_subjects
        assert all(c.inputs["issuer"] == GITHUB_ISSUER and c.inputs["audiences"] == [GITHUB_AUDIENCE] for c in creds)
        # ARM refuses concurrent federated credential writes under one identity: the second waits.
        first, second = creds
        assert first.urn in second.dependencies


@pytest.mark.parametrize("env", ENVS)
def test_no_platform_identity_holds_a_graph_permission_that_can_grant_more(platforms, env):
    held = {g.inputs["appRoleId"] for g in platforms[env].of_type(GRAPH)}
    assert held and not held & set(GRAPH_ESCALATION_ROLES.values())
    assert held <= set(GRAPH_APP_ROLES.values())


@pytest.mark.parametrize("scenarios, pool, message", [
    ((("identity-01-x", ("Directory.ReadWrite.All",)),), 2, "can grant more permissions"),
    ((("identity-01-x", ("AppRoleAssignment.ReadWrite.All",)),), 2, "can grant more permissions"),
    ((("identity-01-x", ("Mail.Send",)),), 2, "unknown Graph permission 'Mail.Send'"),
    ((("identity-01-x", ()),), 2, "needs at least one Graph permission"),
    ((("identity-01-x", ("Group.Create",)),), 0, "graphIdentityPoolSize 0"),
])
def test_graph_identity_pools_are_refused_before_any_resource_is_declared(scenarios, pool, message):
    raised, declared = _declared_before_failure(lambda: GraphIdentities("graph", GraphIdentitiesArgs(
        environment="dev", location="swedencentral", resource_group_name="rg", graph_service_principal_id="g",
        scenarios=scenarios, pool_size=pool)))
    assert message in str(raised.value) and declared == []


# --- outputs and tags -------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_outputs_are_present_and_none_is_secret(platforms, env):
    p = platforms[env]
    assert set(p.outputs) == OUTPUTS
    assert p.secret_outputs == set()
    assert p.outputs["tenantId"] == MOCK_TENANT_ID and p.outputs["subscriptionId"] == MOCK_SUBSCRIPTION_ID
    assert p.outputs["resourceGroupName"] == f"haymaker-{env}-platform"
    assert p.outputs["logAnalyticsWorkspaceId"] == p.one(WS).id
    assert all(isinstance(v, str) and v for k, v in p.outputs.items() if k != "graphIdentities")


@pytest.mark.parametrize("env", ENVS)
def test_taggable_resources_carry_the_platform_tags_and_no_run_tags(platforms, env):
    p, expected = platforms[env], platform_tags(env)
    assert expected == {"AzureHayMaker-managed": "true", "haymaker-env": env, "haymaker-component": "platform"}
    tagged = [r for r in p.resources if r.custom and tags_kind(r.type)]
    assert {r.type for r in tagged} >= {RG, WS, MENV, SA, ACR, UAMI, APP, SP}
    for r in tagged:
        if tags_kind(r.type) == "map":
            assert r.inputs["tags"] == expected, r.name
        else:
            assert sorted(r.inputs["tags"]) == sorted(f"{k}={v}" for k, v in expected.items()), r.name
    assert all("tags" not in r.inputs for r in p.resources if r.custom and not tags_kind(r.type))


# --- settings and validation ------------------------------------------------------------------------

def test_every_platform_stack_has_consistent_config():
    from haymaker.release import RULES

    assert set(PLATFORM_STACKS) == {env for _, env in RULES} == set(ENVS)
    for env in ENVS:
        settings = load_platform_settings(env)
        doc = yaml.safe_load((REPO_ROOT / f"Pulumi.{env}.yaml").read_text())["config"]
        assert doc["azure-native:location"] == settings.environment.location
        policy = load_policy_config(env)
        assert policy["allowed-locations"]["allowedLocations"] == list(settings.environment.allowed_locations)
        assert policy["agent-job-limits"]["allowedRegistries"] == list(settings.environment.allowed_registries)
        assert settings.environment.agent_image.split("/", 1)[0] == f"haymaker{env}.azurecr.io"
        assert not any(isinstance(v, str) and v.startswith("secure:") for v in doc.values())  # nothing secret yet
    assert load_platform_settings("staging").environment.location == "northeurope"


@pytest.mark.parametrize("over, message", [
    ({"githubRepository": None}, "githubRepository is missing"),
    ({"githubRepository": "not a repo"}, "is not owner/repo"),
    ({"logRetentionDays": 7}, "logRetentionDays 7"),
    ({"storageSku": "Premium_LRS"}, "storageSku 'Premium_LRS'"),
    ({"graphIdentityPoolSize": 6}, "graphIdentityPoolSize 6 must be a whole number from 1 to 5"),
    ({"graphIdentityPoolSize": "2"}, "graphIdentityPoolSize '2'"),
])
def test_platform_config_is_refused_with_what_to_change(over, message):
    config = {"githubRepository": "your-org/haymaker", "logRetentionDays": 30, "storageSku": "Standard_LRS", **over}
    with pytest.raises(InvalidInput, match=message):
        PlatformSettings.from_config(load_environment("dev"), config.get)


@pytest.mark.parametrize("check, message", [
    (lambda: check_deployer_inputs("your-org", ("dev",)), "is not owner/repo"),
    (lambda: check_deployer_inputs("your-org/haymaker", ()), "at least one GitHub Environment"),
    (lambda: check_deployer_inputs("your-org/haymaker", ("a:b",)), "cannot appear in an OIDC subject"),
])
def test_deployer_inputs_are_checked(check, message):
    with pytest.raises(InvalidInput, match=message):
        check()


def _declared_before_failure(program) -> list:
    mocks = PlanMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="haymaker", stack="dev", preview=False, monitor=monitor)
    with pytest.raises(InvalidInput) as raised:
        program()
    return raised, list(monitor.declared.values())


def test_bad_args_are_refused_before_any_resource_is_declared():
    from stacks.platform import platform_program

    raised, declared = _declared_before_failure(
        lambda: PlatformEnvironment("platform", PlatformEnvironmentArgs(environment="Dev-1", location="x")))
    assert "environment 'Dev-1'" in str(raised.value) and declared == []
    base = load_platform_settings("dev")
    bad_registry = PlatformSettings(
        environment=type(base.environment)(**{**base.environment.as_dict(), "agent_image": "hm.azurecr.io/a:1",
                                              "allowed_registries": ("hm.azurecr.io",)}),
        github_repository=base.github_repository)
    raised, declared = _declared_before_failure(lambda: platform_program(bad_registry))
    assert "registry name 'hm'" in str(raised.value) and declared == []


# --- the entry point and the run stacks that read the platform ----------------------------------------

def _stack_config(env: str) -> dict:
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{env}.yaml").read_text())["config"]
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def test_pulumi_entry_point_runs_the_platform_program_for_platform_stacks():
    import runpy

    # As a deployment sets it: the shipped example owner is refused (tests/test_handrun.py).
    pulumi.runtime.set_all_config({**_stack_config("dev"), "haymaker:githubRepository": "contoso/haymaker"})
    try:
        declared, _ = evaluate(lambda: runpy.run_module("stacks.__main__", run_name="__main__") and {},
                               project="haymaker", stack="dev")
    finally:
        pulumi.runtime.set_all_config({})
    assert {d.name: d.inputs.get("environmentName") for d in declared if d.type == MENV} == {
        "platform-env": "haymaker-dev"}
    assert any(d.type == FIC and d.inputs["subject"].endswith(":environment:dev") for d in declared)


@pytest.mark.parametrize("stack", ["qa", "production", "run"])
def test_pulumi_entry_point_refuses_an_unknown_stack_with_a_clear_error(stack):
    import runpy

    pulumi.runtime.set_mocks(PlanMocks(), project="haymaker", stack=stack)
    with pytest.raises(pulumi.RunError, match=rf"stack '{stack}' is neither a platform stack \(dev, staging, prod\) "
                                              r"nor a run stack \(run-<run_id>\)"):
        runpy.run_module("stacks.__main__", run_name="__main__")


def test_run_program_deploys_into_the_environment_the_platform_exports(dev, make_spec, settings, catalog):
    from stacks.run import run_program

    spec = make_spec(["compute-01-linux-vm-web-server"])
    resources, _ = evaluate(lambda: run_program(spec, settings, catalog), project="haymaker",
                            stack=spec.stack_name, platform_outputs=dev.outputs)
    run = Declared(resources, None)
    (job,) = run.of_type("azure-native:app:Job")
    assert job.inputs["environmentId"] == dev.outputs["managedEnvironmentId"] == dev.one(MENV).id
    # The run's resource groups are not the platform's: its lock does not reach them.
    assert dev.outputs["resourceGroupName"] not in {r.inputs["resourceGroupName"] for r in run.of_type(RG)}
