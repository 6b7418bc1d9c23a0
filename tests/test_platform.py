"""The platform program (stacks dev, staging, prod) under mocks: what it declares, its rights, its outputs."""

from __future__ import annotations

import json
import re

import pulumi
import pytest
import yaml

from components.platform import (LEDGER_TABLES, ActivityLogExport, ActivityLogExportArgs, PlatformEnvironment,
                                 PlatformEnvironmentArgs, ledger_account_name, platform_tags, registry_name_of)
from components.graphidentity import GraphIdentities, GraphIdentitiesArgs
from components.roles import BUILTIN_ROLES, PRIVILEGED_ROLE_GUIDS
from components.tags import tags_kind
from haymaker.errors import InvalidInput
from haymaker import trust
from haymaker.mockrun import MOCK_SUBSCRIPTION_ID, MOCK_TENANT_ID, PlanMocks, RecordingMonitor, evaluate, is_secret, unwrap
from haymaker.policycheck import load_policy_config
from haymaker.settings import REPO_ROOT, load_environment
from stacks.config import PLATFORM_STACKS, PlatformSettings, load_platform_settings
from haymaker.trust import GITHUB_AUDIENCE, GITHUB_ISSUER
from tests.conftest import TEST_OBJECT_IDS, TEST_REPOSITORY, Declared, bootstrapped

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
DIAG = "azure-native:monitor:SubscriptionDiagnosticSetting"
FEDCRED = "azure-native:managedidentity:FederatedIdentityCredential"
OUTPUTS = {"graphIdentities", "managedEnvironmentId", "resourceGroupName", "logAnalyticsWorkspaceId", "ledgerTableEndpoint",
           "reportsContainerUrl", "reaperObjectId", "tenantId", "subscriptionId", "acrLoginServer",
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
    return {env: _evaluate(bootstrapped(load_platform_settings(env))) for env in ENVS}


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
        "haymaker:platform:EnvironmentGrants", "haymaker:platform:ActivityLogExport",
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
        github_repository=TEST_REPOSITORY, identity_object_ids=dict(TEST_OBJECT_IDS))
    p = _evaluate(settings)
    assert p.of_type(ACR) == [] and [u for u in p.of_type(UAMI) if u.name.startswith("registry-")] == []
    assert not {"acrLoginServer", "agentPullIdentityId"} & set(p.outputs)
    assert not [a for a in p.of_type(RA) if a.name.endswith("-registry") or a.name == "registry-acrpull"]


# --- identities: the platform creates none a workflow can obtain, and grants what the table says ---------

def test_the_platform_creates_no_application_and_declares_no_graph_grant(platforms):
    """Applications a workflow obtains, and every Graph app role, are a person's one-time step."""
    for p in platforms.values():
        assert not [r for r in p.resources if r.type.startswith("azuread:")]
        assert "password" not in json.dumps([r.type.lower() for r in p.resources])  # no secret credential at all


@pytest.mark.parametrize("env", ENVS)
def test_the_platform_grants_exactly_the_trust_tables_platform_grants(platforms, env):
    p, table = platforms[env], trust.load_table(env)
    principals = {**{oid: key for key, oid in TEST_OBJECT_IDS.items()},
                  p.one(UAMI, "registry-pull-identity").outputs["principalId"]: trust.PULL_IDENTITY}
    scopes = {p.one(SA).id: trust.LEDGER, p.one(CONTAINER).id: trust.REPORTS, p.one(WS).id: trust.WORKSPACE,
              p.one(ACR).id: trust.REGISTRY}
    names = {r.guid: r.name for r in BUILTIN_ROLES.values()}
    declared = sorted((principals[a.inputs["principalId"]], names[_role(a.inputs)], scopes[a.inputs["scope"]])
                      for a in p.of_type(RA))
    expected = sorted((i.key, g.role, g.scope) for i in table.identities for g in i.roles
                      if g.granted_by == trust.PLATFORM)
    assert declared == expected
    assert all(a.inputs["principalType"] == "ServicePrincipal" and "condition" not in a.inputs for a in p.of_type(RA))
    assert not any(_role(a.inputs) in PRIVILEGED_ROLE_GUIDS for a in p.of_type(RA))
    # What its deployer's condition allows is exactly what it assigns.
    (grant,) = [g for g in table[trust.PLATFORM_DEPLOYER].roles if g.condition]
    allowed = {names[guid] for c in trust.condition_clauses(grant.condition).values() for guid in c.roles}
    assert allowed == {role for _, role, _ in declared}


def test_the_reaper_co_owns_the_agents_applications_through_the_platforms_output(platforms):
    assert platforms["dev"].outputs["reaperObjectId"] == TEST_OBJECT_IDS["reaper"]


@pytest.mark.parametrize("settings_of, message", [
    (lambda s: s, "is the placeholder this repository ships with"),
    (lambda s: PlatformSettings(s.environment, TEST_REPOSITORY), "haymaker:identityObjectIds of 'dev' lacks "
                                                                 "image-publisher, reaper, run-deployer"),
    (lambda s: PlatformSettings(s.environment, TEST_REPOSITORY,
                                identity_object_ids={**TEST_OBJECT_IDS, "reaper": "me"}), "reaper='me'"),
    (lambda s: PlatformSettings(s.environment, TEST_REPOSITORY,
                                identity_object_ids={**TEST_OBJECT_IDS, "owner": "x"}), "owner='x'"),
])
def test_a_platform_not_yet_bootstrapped_is_refused_before_anything_is_declared(settings_of, message):
    from stacks.platform import platform_program

    raised, declared = _declared_before_failure(lambda: platform_program(settings_of(load_platform_settings("dev"))))
    assert message in str(raised.value) and declared == []


# --- the Graph identities runs borrow ---------------------------------------------------------------

def _graph_identities(platform):
    return [u for u in platform.of_type(UAMI) if u.name.startswith("graph-")]


@pytest.mark.parametrize("env", ENVS)
def test_each_graph_scenario_gets_a_pool_of_identities_that_names_its_graph_roles(platforms, env, catalog):
    p, pool = platforms[env], load_platform_settings(env).graph_identity_pool_size
    needing = {s.name: s.graph_permissions for s in catalog.scenarios.values() if s.graph_permissions}
    exported = p.outputs["graphIdentities"]
    assert set(exported) == set(needing)
    for scenario, permissions in needing.items():
        assert exported[scenario]["permissions"] == list(permissions)
        assert len(exported[scenario]["identities"]) == pool
        for slot, ident in enumerate(exported[scenario]["identities"]):
            (uami,) = [u for u in p.of_type(UAMI) if u.id == ident["id"]]
            assert uami.inputs["resourceName"] == f"haymaker-{env}-graph-{scenario}-{slot}"
            assert uami.inputs["resourceGroupName"] == f"haymaker-{env}-platform"
            assert (ident["clientId"], ident["principalId"]) == (uami.outputs["clientId"], uami.outputs["principalId"])
            # No Azure role here: each run grants its roles on that run's own group only.
            assert not [a for a in p.of_type(RA) if a.inputs["principalId"] == ident["principalId"]]
    principals = [i["principalId"] for e in exported.values() for i in e["identities"]]
    assert len(set(principals)) == len(principals) == len(needing) * pool


@pytest.mark.parametrize("env", ENVS)
def test_graph_identities_trust_exactly_the_tables_subjects_one_credential_at_a_time(platforms, env):
    p, table = platforms[env], trust.load_table(env)
    identities = _graph_identities(p)
    for uami in identities:
        row = next(i for i in table.of_kind(trust.GRAPH_IDENTITY)
                   if uami.inputs["resourceName"].startswith(f"haymaker-{env}-graph-{i.scenario}-"))
        creds = [c for c in p.of_type(FEDCRED) if c.inputs["resourceName"] == uami.outputs["name"]]
        assert sorted(c.inputs["subject"] for c in creds) == sorted(row.subjects(TEST_REPOSITORY)) == sorted([
            f"repo:{TEST_REPOSITORY}:environment:{env}", f"repo:{TEST_REPOSITORY}:environment:reap-{env}"])
        assert all(c.inputs["issuer"] == GITHUB_ISSUER and c.inputs["audiences"] == [GITHUB_AUDIENCE] for c in creds)
        # ARM refuses concurrent federated credential writes under one identity: the second waits.
        first, second = sorted(creds, key=lambda c: len(c.dependencies))
        assert first.urn in second.dependencies
    assert len(p.of_type(FEDCRED)) == 2 * len(identities)


@pytest.mark.parametrize("scenarios, pool, message", [
    ((("identity-01-x", ("Directory.ReadWrite.All",)),), 2, "can grant more permissions"),
    ((("identity-01-x", ("AppRoleAssignment.ReadWrite.All",)),), 2, "can grant more permissions"),
    ((("identity-01-x", ("Mail.Send",)),), 2, "unknown Graph permission 'Mail.Send'"),
    ((("identity-01-x", ()),), 2, "needs at least one Graph permission"),
    ((("identity-01-x", ("Group.Create",)),), 0, "graphIdentityPoolSize 0"),
])
def test_graph_identity_pools_are_refused_before_any_resource_is_declared(scenarios, pool, message):
    raised, declared = _declared_before_failure(lambda: GraphIdentities("graph", GraphIdentitiesArgs(
        environment="dev", location="swedencentral", resource_group_name="rg", scenarios=scenarios, pool_size=pool)))
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
    assert {r.type for r in tagged} >= {RG, WS, MENV, SA, ACR, UAMI}
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
        github_repository=TEST_REPOSITORY, identity_object_ids=dict(TEST_OBJECT_IDS))
    raised, declared = _declared_before_failure(lambda: platform_program(bad_registry))
    assert "registry name 'hm'" in str(raised.value) and declared == []


# --- the entry point and the run stacks that read the platform ----------------------------------------

def _stack_config(env: str) -> dict:
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{env}.yaml").read_text())["config"]
    config.update({"haymaker:githubRepository": TEST_REPOSITORY, "haymaker:identityObjectIds": TEST_OBJECT_IDS})
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
    assert any(d.type == FEDCRED and d.inputs["subject"].endswith(":environment:dev") for d in declared)


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
