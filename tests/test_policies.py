"""The policy pack: each validator on engine-shaped args, and the offline gate end to end."""

from __future__ import annotations

import json

import pulumi
import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from components.roles import BUILTIN_ROLES, GRAPH_APP_ROLES
from haymaker.cli import main
from haymaker.plan import make_plan
from haymaker.policycheck import effective, load_policy_config
from policies.rules import POLICIES
from tests.conftest import RUN_ID

STACK = f"run-{RUN_ID}"
SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
RG_NAME = f"haymaker-{RUN_ID}-compute-01-linux-vm-web-server"
RG_ID = f"{SUB}/resourceGroups/{RG_NAME}"
TAGS = {"AzureHayMaker-managed": "true", "haymaker-run": RUN_ID, "haymaker-scenario": "compute-01-linux-vm-web-server",
        "haymaker-env": "dev", "haymaker-expires": "2026-11-21T14:00:00Z"}
POLICY = {p.name: p for p in POLICIES}


def opts():
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def urn(token, name, stack=STACK):
    return f"urn:pulumi:{stack}::haymaker::{token}::{name}"


def config_of(policy_name, **override):
    _, cfg = effective(POLICY[policy_name], {policy_name: override})
    return cfg


def validate(policy_name, token, props, name="r", stack=STACK, **config):
    """Run one resource policy the way the engine calls it; return the violation messages."""
    found = []
    args = ResourceValidationArgs(token, props, urn(token, name, stack), name, opts(), None,
                                  config_of(policy_name, **config), {})
    POLICY[policy_name].validate(args, lambda message, u=None: found.append(message))
    return found


def resource(token, name, props, **deps):
    return PolicyResource(token, props, urn(token, name), name, opts(), None, None, [], deps)


def validate_stack(policy_name, resources, stack_tags=None, **config):
    found = []
    args = StackValidationArgs(resources, config_of(policy_name, **config), stack_tags or {})
    POLICY[policy_name].validate(args, lambda message, u=None: found.append(message))
    return found


RG = "azure-native:resources:ResourceGroup"
RA = "azure-native:authorization:RoleAssignment"
JOB = "azure-native:app:Job"
PWD = "azuread:index/applicationPassword:ApplicationPassword"


def role_id(name):
    return f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BUILTIN_ROLES[name].guid}"


def job_props(**over):
    props = {
        "location": "swedencentral", "tags": TAGS,
        "configuration": {"replicaTimeout": 30600, "replicaRetryLimit": 1, "triggerType": "Schedule",
                          "secrets": [{"name": "agent-client-secret", "value": "s3cr3t"}]},
        "template": {"containers": [{
            "name": "agent", "image": "haymakerdev.azurecr.io/haymaker-agent:0.1.0",
            "resources": {"cpu": 0.5, "memory": "1Gi"},
            "env": [{"name": "HAYMAKER_RUN_ID", "value": RUN_ID},
                    {"name": "AZURE_CLIENT_SECRET", "secretRef": "agent-client-secret"}]}]},
    }
    props.update(over)
    return props


# --- 1 tags ----------------------------------------------------------------------------------------

def test_required_tags():
    assert validate("haymaker-required-tags", RG, {"tags": TAGS}) == []
    (msg,) = validate("haymaker-required-tags", RG, {"tags": {"haymaker-run": RUN_ID}})
    assert msg.startswith("missing tags AzureHayMaker-managed, haymaker-scenario, haymaker-env, haymaker-expires")
    (msg,) = validate("haymaker-required-tags", RG, {})  # missing property
    assert "missing tags" in msg
    (msg,) = validate("haymaker-required-tags", RG, {"tags": {**TAGS, "haymaker-run": "20200101t0000z-0000"}})
    assert "but the stack is run-" in msg
    assert validate("haymaker-required-tags", RG, {"tags": UNKNOWN_STRING_VALUE}) == []
    # not a run stack, or not taggable: nothing to say
    assert validate("haymaker-required-tags", RG, {}, stack="dev") == []
    assert validate("haymaker-required-tags", RA, {}) == []


# --- 2 role assignment scope (stack policy) ---------------------------------------------------------

def test_role_assignment_scope():
    rg = resource(RG, "a-rg", {"resourceGroupName": RG_NAME})
    ok = resource(RA, "a-role", {"scope": RG_ID})
    assert validate_stack("agent-role-assignment-rg-scope", [rg, ok]) == []
    sub = resource(RA, "sub-role", {"scope": SUB})
    mg = resource(RA, "mg-role", {"scope": "/providers/Microsoft.Management/managementGroups/root"})
    foreign = resource(RA, "foreign-role", {"scope": f"{SUB}/resourceGroups/prod-payments"})
    missing = resource(RA, "missing-role", {})
    msgs = validate_stack("agent-role-assignment-rg-scope", [rg, sub, mg, foreign, missing])
    assert len(msgs) == 4
    assert msgs[0].startswith("sub-role: scope") and "is not a resource group" in msgs[0]
    assert "is not a resource group" in msgs[1]
    assert "a resource group this stack does not declare" in msgs[2]
    assert msgs[3] == "missing-role: no scope: scope it to the agent's resource group id"


def test_role_assignment_scope_unknown_at_preview_must_come_from_a_declared_group():
    rg = resource(RG, "a-rg", {"resourceGroupName": RG_NAME})
    from_rg = resource(RA, "a-role", {"scope": UNKNOWN_STRING_VALUE}, scope=[rg])
    from_elsewhere = resource(RA, "b-role", {"scope": UNKNOWN_STRING_VALUE})
    msgs = validate_stack("agent-role-assignment-rg-scope", [rg, from_rg, from_elsewhere])
    assert msgs == ["b-role: scope is not taken from a resource group of this stack: use the agent resource group's id"]


# --- 3 privileged roles ------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["Owner", "User Access Administrator", "Role Based Access Control Administrator"])
def test_privileged_roles_are_refused(role):
    (msg,) = validate("agent-no-privileged-roles", RA, {"roleDefinitionId": role_id(role)})
    assert msg.startswith(f"role {role} (") and "pick a narrower built-in role" in msg


def test_privileged_roles_pass_missing_and_config():
    assert validate("agent-no-privileged-roles", RA, {"roleDefinitionId": role_id("Reader")}) == []
    assert validate("agent-no-privileged-roles", RA, {}) == []  # nothing to judge yet
    reader = BUILTIN_ROLES["Reader"].guid
    assert validate("agent-no-privileged-roles", RA, {"roleDefinitionId": role_id("Reader")},
                    forbiddenRoleIds=[reader]) != []
    assert validate("agent-no-privileged-roles", RA, {"roleDefinitionId": role_id("Owner")}, forbiddenRoleIds=[]) == []


# --- 4 principal type --------------------------------------------------------------------------------

def test_principal_type():
    assert validate("agent-role-assignment-principal-type", RA, {"principalType": "ServicePrincipal"}) == []
    (msg,) = validate("agent-role-assignment-principal-type", RA, {"principalType": "User"})
    assert "set principal_type='ServicePrincipal'" in msg
    (msg,) = validate("agent-role-assignment-principal-type", RA, {})
    assert msg.startswith("principalType is None")
    assert validate("agent-role-assignment-principal-type", RA, {"principalType": UNKNOWN_STRING_VALUE}) == []


# --- 5 credential expiry -----------------------------------------------------------------------------

def test_credential_expiry():
    rg = resource(RG, "a-rg", {"tags": TAGS})
    good = resource(PWD, "ok", {"endDate": "2026-11-21T15:00:00Z"})
    late = resource(PWD, "late", {"endDate": "2027-11-21T14:00:00Z"})
    none = resource(PWD, "none", {})
    assert validate_stack("agent-credential-expiry", [rg, good]) == []
    msgs = validate_stack("agent-credential-expiry", [rg, late, none])
    assert msgs[0].startswith("late: endDate 2027-11-21T14:00:00Z is after the run's expiry + 1:00:00")
    assert msgs[1] == "none: no endDate: set end_date to the run's expiry plus the grace"
    # config: a shorter grace makes the good one late; the stack tag wins over resource tags
    assert validate_stack("agent-credential-expiry", [rg, good], graceMinutes=30) != []
    assert validate_stack("agent-credential-expiry", [good], {"haymaker:expires": "2026-11-21T10:00:00Z"}) != []
    assert validate_stack("agent-credential-expiry", [resource(PWD, "u", {"endDate": UNKNOWN_STRING_VALUE})]) == []


# --- 6 job limits ------------------------------------------------------------------------------------

def test_job_limits_pass_and_fail():
    assert validate("agent-job-limits", JOB, job_props()) == []
    bad = job_props(configuration={"replicaTimeout": 86400, "ingress": {"external": True},
                                   "replicaRetryLimit": 10})
    bad["template"]["containers"][0].update(image="docker.io/someone/agent:latest",
                                            resources={"cpu": 4.0, "memory": "8Gi"})
    msgs = validate("agent-job-limits", JOB, bad)
    assert any("replicaTimeout 86400 s is over the maximum 37800 s" in m for m in msgs)
    assert any("replicaRetryLimit 10" in m for m in msgs)
    assert any("take no ingress" in m for m in msgs)
    assert any("not from an allowed registry" in m for m in msgs)
    assert any("cpu 4.0 is over the ceiling 2.0" in m for m in msgs)
    assert any("memory '8Gi' is over the ceiling 4.0Gi" in m for m in msgs)


def test_job_limits_missing_unknown_and_config():
    msgs = validate("agent-job-limits", JOB, {"template": {"containers": [{"name": "agent"}]}})
    assert "no replicaTimeout: set it to the run duration plus the cleanup buffer" in msgs
    assert validate("agent-job-limits", JOB, {"configuration": UNKNOWN_STRING_VALUE}) == []
    assert validate("agent-job-limits", JOB, job_props(), maxReplicaTimeoutSeconds=3600) != []
    assert validate("agent-job-limits", JOB, job_props(), allowedRegistries=["other.azurecr.io"]) != []
    (msg,) = validate("agent-job-limits", "azure-native:app:ContainerApp", {})
    assert "use app.Job" in msg


# --- 7 locations -------------------------------------------------------------------------------------

def test_allowed_locations():
    assert validate("allowed-locations", RG, {"location": "swedencentral"}) == []
    assert validate("allowed-locations", RG, {"location": "Sweden Central"}) == []
    (msg,) = validate("allowed-locations", RG, {"location": "eastus"})
    assert msg.startswith("location 'eastus' is not allowed: use one of")
    assert validate("allowed-locations", RG, {}) == []  # resources without a location (Entra objects)
    assert validate("allowed-locations", RG, {"location": "eastus"}, allowedLocations=["eastus"]) == []


def test_a_scenarios_declared_locations_need_the_environments_consent(fixture_catalog, catalog):
    """Bot Service lives in 'global' and Static Web Apps in westeurope: scenarioLocations must list them."""
    from policies.rules import CATALOG

    token = CATALOG.set(fixture_catalog)  # as `haymaker plan` sets the catalog it planned with
    try:
        for scenario, location in (("ai-ml-05-bot-service", "global"), ("webapps-04-static-web-apps", "westeurope")):
            job = job_props(tags={**TAGS, "haymaker-scenario": scenario})
            (msg,) = validate("allowed-locations", JOB, job, allowedLocations=["swedencentral"])
            assert msg == (f"scenario {scenario} names location {location!r} in its steps, which this environment "
                           "does not allow: add it to allowed-locations scenarioLocations in "
                           "policies/config.<env>.json, or leave the scenario out")
            assert validate("allowed-locations", JOB, job, allowedLocations=["swedencentral"],
                            scenarioLocations=["global", "westeurope"]) == []
    finally:
        CATALOG.reset(token)
    named = {loc for s in catalog.scenarios.values() for loc in s.locations}
    for environment in ("dev", "staging", "prod"):  # every shipped environment runs the whole catalog
        cfg = load_policy_config(environment)["allowed-locations"]
        assert named <= set(cfg["allowedLocations"] + cfg["scenarioLocations"])


# --- 8 Graph permissions -----------------------------------------------------------------------------

def test_graph_permissions():
    """No stack declares a Graph app role: a person grants them once; the allowlist shapes what is printed."""
    from policies.rules import graph_permission_allowed

    GRAPH = "azuread:index/appRoleAssignment:AppRoleAssignment"

    def platform(props, **config):
        return validate("graph-permissions-allowlist", GRAPH, props, stack="dev", **config)

    (msg,) = platform({"appRoleId": GRAPH_APP_ROLES["Group.Create"]})
    assert msg.startswith("the platform declares no Graph app role assignment (its deployer would need "
                          "AppRoleAssignment.ReadWrite.All): a Privileged Role Administrator grants them once")
    (msg,) = platform({"appRoleId": "19dbc75e-c2e2-444c-a770-ec69d8559fc7"})
    assert msg == "Graph permission Directory.ReadWrite.All lets its holder grant itself more: no HayMaker " \
                  "identity may hold it"
    (msg,) = platform({})
    assert msg.startswith("the platform declares no Graph app role assignment")
    (msg,) = validate("graph-permissions-allowlist", GRAPH, {"appRoleId": GRAPH_APP_ROLES["Group.Create"]})
    assert msg.startswith("a run declares no Graph app role assignment (granting one needs "
                          "AppRoleAssignment.ReadWrite.All)")
    cfg = {"allowedPermissions": sorted(GRAPH_APP_ROLES), "highPrivilegePermissions": ["User.ReadWrite.All"],
           "allowHighPrivilege": False}
    assert graph_permission_allowed("Group.Create", cfg) is None
    assert "high-privilege" in graph_permission_allowed("User.ReadWrite.All", cfg)
    assert graph_permission_allowed("User.ReadWrite.All", {**cfg, "allowHighPrivilege": True}) is None
    assert graph_permission_allowed("Group.Create", {**cfg, "allowedPermissions": ["User.Read.All"]}) == \
        "Graph app role Group.Create is not in the allowlist: use one of User.Read.All"
    assert "grant itself more" in graph_permission_allowed("AppRoleAssignment.ReadWrite.All", cfg)


def test_the_platform_declares_no_graph_grant_in_any_environment():
    from haymaker.mockrun import evaluate
    from stacks.config import load_platform_settings
    from stacks.platform import platform_program
    from tests.conftest import bootstrapped

    for env in ("dev", "staging", "prod"):
        declared, _ = evaluate(lambda: platform_program(bootstrapped(load_platform_settings(env))), project="haymaker",
                               stack=env)
        assert not [d for d in declared if d.type == "azuread:index/appRoleAssignment:AppRoleAssignment"]


def test_sensitive_roles_only_where_the_environment_allows_them():
    kv_admin = {"roleDefinitionId": role_id("Key Vault Administrator"), "principalType": "ServicePrincipal"}
    (msg,) = validate("agent-sensitive-roles", RA, kv_admin)
    assert msg == ("role Key Vault Administrator is a data-owner role, which this environment does not allow agents: "
                   "pick a narrower role, or allow it in policies/config.<env>.json (agent-sensitive-roles allowedRoles)")
    assert validate("agent-sensitive-roles", RA, kv_admin, allowedRoles=["Key Vault Administrator"]) == []
    assert validate("agent-sensitive-roles", RA, {"roleDefinitionId": role_id("Reader")}) == []
    assert validate("agent-sensitive-roles", RA, kv_admin, stack="dev") == []  # platform stacks are not agents
    assert validate("agent-sensitive-roles", RA, {}) == []


def test_each_sensitive_role_an_environment_allows_is_one_a_scenario_needs(catalog):
    """An allowance nothing needs widens what the run deployer may assign: policy configs carry none."""
    from components.roles import BUILTIN_ROLES

    used = {r for s in catalog.scenarios.values() for r in s.azure_roles}
    for env in ("dev", "staging", "prod"):
        allowed = load_policy_config(env).get("agent-sensitive-roles", {}).get("allowedRoles", [])
        assert all(BUILTIN_ROLES[r].sensitive for r in allowed)
        assert set(allowed) <= used, env


def test_images_by_digest_where_the_environment_requires_it():
    pinned = "haymakerprod.azurecr.io/haymaker-agent@sha256:" + "ab" * 32
    tagged = "haymakerprod.azurecr.io/haymaker-agent:1.4.0"

    def job(image):
        props = job_props()
        props["template"]["containers"][0]["image"] = image
        return props

    registries = ["haymakerprod.azurecr.io"]
    assert validate("agent-job-limits", JOB, job(tagged), allowedRegistries=registries) == []
    (msg,) = validate("agent-job-limits", JOB, job(tagged), allowedRegistries=registries, requireDigest=True)
    assert msg.startswith("container agent: image 'haymakerprod.azurecr.io/haymaker-agent:1.4.0' is a tag, which can "
                          "move: this environment runs images pinned by digest: set haymaker:agentImage")
    assert validate("agent-job-limits", JOB, job(pinned), allowedRegistries=registries, requireDigest=True) == []
    assert load_policy_config("prod")["agent-job-limits"]["requireDigest"] is True


# --- 9 secrets ---------------------------------------------------------------------------------------

def test_no_plain_secrets():
    assert validate("no-plain-secrets", JOB, job_props()) == []
    bad = job_props()
    bad["template"]["containers"][0]["env"] = [{"name": "AZURE_CLIENT_SECRET", "value": "s3cr3t"},
                                               {"name": "DB_PASSWORD", "secretRef": "nope"}]
    msgs = validate("no-plain-secrets", JOB, bad)
    assert msgs == ["env AZURE_CLIENT_SECRET carries a plain value: store it as a job secret and use secretRef",
                    "env DB_PASSWORD refers to secret 'nope', which the job does not define"]
    assert validate("no-plain-secrets", JOB, {}) == []


def test_no_credential_in_outputs():
    cred = resource(PWD, "cred", {"value": "s3cr3t"})
    job = resource(JOB, "job", job_props())
    stack = resource("pulumi:pulumi:Stack", "stack", {"inventory": [{"client_id": "abc"}]})
    assert validate_stack("no-credential-in-outputs", [cred, job, stack]) == []
    leaky = resource("pulumi:pulumi:Stack", "stack", {"debug": {"secret": "s3cr3t"}})
    assert validate_stack("no-credential-in-outputs", [cred, leaky]) == [
        "a credential value appears in stack outputs: pass it only as a job secret"]


# --- 10 scenarios per run ----------------------------------------------------------------------------

def test_scenario_limits():
    agents = [resource("haymaker:index:ScenarioAgent", f"s{i}", {}) for i in range(3)]
    assert validate_stack("run-scenario-limits", agents) == []
    (msg,) = validate_stack("run-scenario-limits", agents, maxScenarios=2)
    assert msg == "3 scenarios in one run; the limit is 2: pick fewer"
    twins = [resource(JOB, f"j{i}", {"tags": TAGS}) for i in range(2)]
    (msg,) = validate_stack("run-scenario-limits", twins)
    assert msg.startswith("scenario compute-01-linux-vm-web-server has 2 agents")


# --- 11 cost (advisory) ------------------------------------------------------------------------------

def test_cost_warning_is_advisory_and_configurable():
    assert POLICY["run-cost-warning"].enforcement_level == EnforcementLevel.ADVISORY
    job = resource(JOB, "job", job_props())
    assert validate_stack("run-cost-warning", [job]) == []
    (msg,) = validate_stack("run-cost-warning", [job], warnAboveUsd=0.01)
    assert msg.startswith("estimated run cost $") and "over the warning threshold $0.01" in msg


def test_every_policy_has_kebab_name_and_handles_empty_props():
    for p in POLICIES:
        assert p.name == p.name.lower() and " " not in p.name
    for token in (RG, RA, JOB, PWD, "azuread:index/appRoleAssignment:AppRoleAssignment"):
        for p in POLICIES:
            if hasattr(p, "validate") and p.__class__.__name__ == "ResourceValidationPolicy":
                validate(p.name, token, {})  # must not raise


def test_environment_config_files_agree_with_the_stacks(settings):
    dev = load_policy_config("dev")
    assert dev["allowed-locations"]["allowedLocations"] == list(settings.allowed_locations)
    assert dev["agent-job-limits"]["allowedRegistries"] == list(settings.allowed_registries)
    assert load_policy_config("prod")["graph-permissions-allowlist"]["allowHighPrivilege"] is False


# --- the offline gate end to end ---------------------------------------------------------------------

@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_plans_of_every_catalog_scenario_pass_every_mandatory_policy(catalog, make_spec, environment):
    """Every scenario of the catalog, in runs of at most 25 (a run holds at most 30), in each environment."""
    from haymaker.settings import load_environment

    from dataclasses import replace

    names = catalog.names()
    settings = load_environment(environment)
    # As a deployment pins it (prod refuses a tag: test_prod_refuses_the_shipped_tag_until_a_digest_is_pinned).
    settings = replace(settings, agent_image=settings.agent_image.split(":")[0] + "@sha256:" + "0f" * 32)
    for chunk in (names[i:i + 25] for i in range(0, len(names), 25)):
        spec = make_spec(chunk, environment=environment)
        plan = make_plan(spec, settings, catalog, budget_usd=10_000)
        assert [v for v in plan.violations if v.enforcement == "mandatory"] == []


def test_prod_refuses_the_shipped_tag_until_a_digest_is_pinned(catalog, make_spec):
    """Pulumi.prod.yaml ships with a tag (no image exists yet): every prod run is refused, saying what to set."""
    from haymaker.settings import load_environment

    settings = load_environment("prod")
    spec = make_spec(catalog.names()[:1], environment="prod")
    plan = make_plan(spec, settings, catalog, budget_usd=10_000)
    if "@sha256:" in settings.agent_image:  # a deployment that pinned it passes (the test above)
        assert plan.mandatory_violations == []
        return
    (violation,) = plan.mandatory_violations
    assert violation.policy == "agent-job-limits" and "is a tag, which can move" in violation.message
    assert "set haymaker:agentImage in Pulumi.<env>.yaml to <registry>/haymaker-agent@sha256:<digest>" in \
        violation.message


def test_more_scenarios_than_the_limit_in_one_run_break_the_run_size_limit(fixture_catalog, settings, make_spec):
    names = fixture_catalog.names()[:3]
    plan = make_plan(make_spec(names), settings, fixture_catalog, budget_usd=10_000,
                     policy_config={**load_policy_config("dev"), "run-scenario-limits": {"maxScenarios": 2}})
    assert [v.line() for v in plan.mandatory_violations] == [
        "run-scenario-limits: (stack): 3 scenarios in one run; the limit is 2: pick fewer"]


def _bad(mutate):
    """A program variant: a transform that edits what the run program declares, as a careless
    change to the program would."""
    def transform(args):
        props = dict(args.props)
        if mutate(args.type_, props) is False:
            return None
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)
    return transform


def _subscription_scope(t, p):
    if t != RA:
        return False
    p["scope"] = "/subscriptions/00000000-0000-0000-0000-00000000bbbb"


def _owner(t, p):
    if t != RA:
        return False
    p["roleDefinitionId"] = role_id("Owner")


def _day_long_job(t, p):
    if t != JOB:
        return False
    from haymaker.mockrun import unwrap
    p["configuration"] = {**unwrap(p["configuration"]), "replicaTimeout": 24 * 3600}


def _plain_secret(t, p):
    if t != JOB:
        return False
    from haymaker.mockrun import unwrap
    template = unwrap(p["template"])
    secret = unwrap(p["configuration"])["secrets"][0]["value"]
    env = template["containers"][0]["env"]
    template["containers"][0]["env"] = [e for e in env if e["name"] != "AZURE_CLIENT_SECRET"] + [
        {"name": "AZURE_CLIENT_SECRET", "value": secret}]
    p["template"] = template


def _eastus(t, p):
    if t != "azure-native:resources:ResourceGroup":
        return False
    p["location"] = "eastus"


@pytest.mark.parametrize("mutate, policy", [
    (_subscription_scope, "agent-role-assignment-rg-scope"),
    (_owner, "agent-no-privileged-roles"),
    (_day_long_job, "agent-job-limits"),
    (_plain_secret, "no-plain-secrets"),
    (_eastus, "allowed-locations"),
])
def test_program_variants_fail_with_the_right_policy(declare, make_spec, settings, catalog, mutate, policy):
    from haymaker import policycheck
    from stacks.run import run_program

    spec = make_spec(["compute-01-linux-vm-web-server"])

    def program():
        pulumi.runtime.register_resource_transform(_bad(mutate))
        return run_program(spec, settings, catalog)

    run = declare(spec, program=program)
    violations = policycheck.check(run.resources, run.outputs, spec.stack_tags(), load_policy_config("dev"))
    named = {v.policy for v in violations if v.enforcement == "mandatory"}
    assert policy in named, violations


def test_plan_exits_2_and_names_each_violation(capsys, tmp_path):
    cfg = tmp_path / "strict.json"
    cfg.write_text(json.dumps({"agent-job-limits": {"maxReplicaTimeoutSeconds": 60}}))
    assert main(["plan", "--json", "--run-id", RUN_ID, "-s", "compute-01-linux-vm-web-server"]) == 0
    saved = tmp_path / "plan.json"
    saved.write_text(capsys.readouterr().out)
    assert main(["policy", "check", str(saved)]) == 0
    capsys.readouterr()
    assert main(["policy", "check", str(saved), "--policy-config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert ("agent-job-limits: compute-01-linux-vm-web-server-job: replicaTimeout 30600 s is over the "
            "maximum 60 s") in err
    assert main(["policy", "check", str(tmp_path / "missing.json")]) == 1


def test_enforcement_level_can_be_overridden_per_policy(declare, make_spec):
    from haymaker import policycheck

    spec = make_spec(["compute-01-linux-vm-web-server"])
    run = declare(spec)
    strict = {"agent-job-limits": {"maxReplicaTimeoutSeconds": 60}}
    found = policycheck.check(run.resources, run.outputs, spec.stack_tags(), strict)
    assert [(v.policy, v.enforcement) for v in found] == [("agent-job-limits", "mandatory")]
    advisory = {"agent-job-limits": {"maxReplicaTimeoutSeconds": 60, "enforcementLevel": "advisory"}}
    found = policycheck.check(run.resources, run.outputs, spec.stack_tags(), advisory)
    assert [(v.policy, v.enforcement) for v in found] == [("agent-job-limits", "advisory")]
    disabled = {"agent-job-limits": {"maxReplicaTimeoutSeconds": 60, "enforcementLevel": "disabled"}}
    assert policycheck.check(run.resources, run.outputs, spec.stack_tags(), disabled) == []


def test_unknown_policy_in_a_config_file_is_refused(tmp_path):
    from haymaker.errors import InvalidInput

    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"no-such-policy": {}}))
    with pytest.raises(InvalidInput, match="configures unknown policies no-such-policy"):
        load_policy_config("dev", bad)
