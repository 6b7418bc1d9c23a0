"""The HayMaker policies. Imported by the pack (policies/__main__.py) and by `haymaker plan`.

Every validator reads the engine's camelCase props, treats unknown (preview-time) values as "cannot
tell yet" rather than crashing, and says in its message what to change.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_STRING_VALUE,
)

from components.roles import BUILTIN_ROLES, GRAPH_APP_ROLES, GRAPH_ESCALATION_ROLES, PRIVILEGED_ROLE_GUIDS
from components.tags import MANAGED_TAG, tags_kind

UNKNOWNS = {UNKNOWN_STRING_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_BOOLEAN_VALUE, UNKNOWN_ARRAY_VALUE}
RG = "azure-native:resources:ResourceGroup"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
JOB = "azure-native:app:Job"
CONTAINER_APP = "azure-native:app:ContainerApp"
PASSWORD_TYPES = ("azuread:index/applicationPassword:ApplicationPassword",
                  "azuread:index/servicePrincipalPassword:ServicePrincipalPassword")
APP_ROLE_ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
AGENT = "haymaker:index:ScenarioAgent"
REQUIRED_TAGS = (MANAGED_TAG, "haymaker-run", "haymaker-scenario", "haymaker-env", "haymaker-expires")
HIGH_PRIVILEGE_GRAPH = ("Group.ReadWrite.All", "User.ReadWrite.All", "Directory.Read.All")
SECRET_NAME_RE = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CONNECTION_?STRING|(?<!VAULT_)KEY$|API_?KEY", re.I)
RG_SCOPE_RE = re.compile(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)$", re.I)
DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")
CATALOG: ContextVar = ContextVar("haymaker_policy_catalog", default=None)  # see _catalog


def unknown(value) -> bool:
    return isinstance(value, str) and value in UNKNOWNS


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> stack."""
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0] if urn.startswith("urn:pulumi:") else ""


def is_run_stack(urn: str) -> bool:
    return stack_of(urn).startswith("run-")


def parse_time(value) -> datetime | None:
    if not isinstance(value, str) or unknown(value):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def memory_gib(value) -> float | None:
    m = re.fullmatch(r"\s*([0-9.]+)\s*Gi\s*", value) if isinstance(value, str) else None
    return float(m.group(1)) if m else None


# 1. tags ------------------------------------------------------------------------------------------

def required_tags_validator(args, report_violation):
    if not is_run_stack(args.urn) or tags_kind(args.resource_type) != "map":
        return
    tags = args.props.get("tags")
    if unknown(tags):
        return
    tags = tags if isinstance(tags, dict) else {}
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        report_violation(f"missing tags {', '.join(missing)}: declare the resource after "
                         "register_tag_transform() so the stack transform tags it")
        return
    run_id = stack_of(args.urn).removeprefix("run-")
    if tags["haymaker-run"] not in UNKNOWNS and tags["haymaker-run"] != run_id:
        report_violation(f"tag haymaker-run is {tags['haymaker-run']!r} but the stack is run-{run_id}: "
                         "tag with this run's id")


# 2-4. role assignments ---------------------------------------------------------------------------

def _role_guid(props) -> str | None:
    rid = props.get("roleDefinitionId")
    if not isinstance(rid, str) or unknown(rid):
        return None
    return rid.rstrip("/").rsplit("/", 1)[-1].lower()


def role_assignment_scope_validator(args, report_violation):
    """Stack policy: every role assignment's scope is a resource group declared by this stack."""
    groups = {r.urn: r for r in args.resources if r.resource_type == RG}
    names = {str(r.props.get("resourceGroupName", "")).lower() for r in groups.values()}
    # Agent rules: platform stacks grant the deployer's (condition-limited) rights on purpose.
    for ra in (r for r in args.resources if r.resource_type == ROLE_ASSIGNMENT and is_run_stack(r.urn)):
        scope = ra.props.get("scope")
        if scope is None:
            report_violation(f"{ra.name}: no scope: scope it to the agent's resource group id", ra.urn)
        elif unknown(scope):
            deps = (ra.property_dependencies or {}).get("scope", [])
            if not any(d.urn in groups for d in deps):
                report_violation(f"{ra.name}: scope is not taken from a resource group of this stack: "
                                 "use the agent resource group's id", ra.urn)
        else:
            m = RG_SCOPE_RE.match(str(scope))
            if not m:
                report_violation(f"{ra.name}: scope {scope!r} is not a resource group (subscription, management "
                                 "group or a single resource): scope it to the agent's resource group", ra.urn)
            elif m.group(1).lower() not in names:
                report_violation(f"{ra.name}: scope {scope!r} is a resource group this stack does not declare: "
                                 "grant roles only on the agent's own resource group", ra.urn)


def no_privileged_roles_validator(args, report_violation):
    if args.resource_type != ROLE_ASSIGNMENT or not is_run_stack(args.urn):
        return
    guid = _role_guid(args.props)
    forbidden = {g.lower() for g in args.get_config().get("forbiddenRoleIds", [])}
    if guid and guid in forbidden:
        name = next((r.name for r in BUILTIN_ROLES.values() if r.guid == guid), guid)
        report_violation(f"role {name} ({guid}) lets an agent grant access or own everything: "
                         "pick a narrower built-in role for the scenario")


def sensitive_roles_validator(args, report_violation):
    """A data-owner, identity-management, policy or registry-push role only where this environment allows it."""
    if args.resource_type != ROLE_ASSIGNMENT or not is_run_stack(args.urn):
        return
    guid = _role_guid(args.props)
    role = next((r for r in BUILTIN_ROLES.values() if r.guid.lower() == guid), None) if guid else None
    if role is None or not role.sensitive:
        return
    if role.name not in args.get_config().get("allowedRoles", []):
        report_violation(f"role {role.name} is a {role.sensitive} role, which this environment does not allow "
                         "agents: pick a narrower role, or allow it in policies/config.<env>.json "
                         "(agent-sensitive-roles allowedRoles)")


def principal_type_validator(args, report_violation):
    if args.resource_type != ROLE_ASSIGNMENT:
        return
    value = args.props.get("principalType")
    if unknown(value):
        return
    if value != "ServicePrincipal":
        report_violation(f"principalType is {value!r}: set principal_type='ServicePrincipal' (it also avoids "
                         "the PrincipalNotFound replication race)")


# 5. credentials ----------------------------------------------------------------------------------

def _run_expiry(resources, stack_tags) -> datetime | None:
    t = parse_time((stack_tags or {}).get("haymaker:expires"))
    if t:
        return t
    found = {(r.props.get("tags") or {}).get("haymaker-expires") for r in resources
             if isinstance(r.props.get("tags"), dict)}
    times = [parse_time(v) for v in found if v]
    times = [t for t in times if t]
    return max(times) if times else None


def credential_expiry_validator(args, report_violation):
    """Stack policy: credentials die no later than the run's expiry plus the grace."""
    expiry = _run_expiry(args.resources, getattr(args, "stack_tags", None))
    grace = timedelta(minutes=args.get_config().get("graceMinutes", 60))
    for cred in (r for r in args.resources if r.resource_type in PASSWORD_TYPES):
        end = cred.props.get("endDate")
        if unknown(end):
            continue
        if end is None and not cred.props.get("endDateRelative"):
            report_violation(f"{cred.name}: no endDate: set end_date to the run's expiry plus the grace", cred.urn)
            continue
        end_time = parse_time(end)
        if end is not None and end_time is None:
            report_violation(f"{cred.name}: endDate {end!r} is not an ISO-8601 time", cred.urn)
        elif end_time is None:
            report_violation(f"{cred.name}: a relative end date cannot be checked: set end_date", cred.urn)
        elif expiry is None:
            report_violation(f"{cred.name}: the run's expiry is unknown (no haymaker:expires stack tag or "
                             "haymaker-expires tag): tag the run", cred.urn)
        elif end_time > expiry + grace:
            report_violation(f"{cred.name}: endDate {end} is after the run's expiry + {grace} "
                             f"({(expiry + grace).strftime('%Y-%m-%dT%H:%M:%SZ')}): shorten it", cred.urn)


# 6. agent jobs -----------------------------------------------------------------------------------

def job_limits_validator(args, report_violation):
    if args.resource_type == CONTAINER_APP and is_run_stack(args.urn):
        report_violation("agents run as Container Apps Jobs, not Apps (an App restarts an exited agent "
                         "and can take ingress): use app.Job")
        return
    if args.resource_type != JOB:
        return
    cfg = args.get_config()
    conf = args.props.get("configuration") or {}
    if unknown(conf):
        return
    timeout = conf.get("replicaTimeout")
    if timeout is None:
        report_violation("no replicaTimeout: set it to the run duration plus the cleanup buffer")
    elif not unknown(timeout) and timeout > cfg["maxReplicaTimeoutSeconds"]:
        report_violation(f"replicaTimeout {int(timeout)} s is over the maximum {cfg['maxReplicaTimeoutSeconds']} s: "
                         "agents work at most 10 h plus the cleanup buffer")
    retries = conf.get("replicaRetryLimit")
    if retries is None or (not unknown(retries) and retries > cfg["maxRetryLimit"]):
        report_violation(f"replicaRetryLimit {retries!r} is unbounded or over {cfg['maxRetryLimit']}: set it explicitly")
    if conf.get("ingress") not in (None,):
        report_violation("agent jobs take no ingress: remove it")
    template = args.props.get("template") or {}
    containers = template.get("containers") if isinstance(template, dict) else None
    for c in containers if isinstance(containers, list) else []:
        name = c.get("name", "?")
        image = c.get("image")
        if isinstance(image, str) and not unknown(image):
            registry = image.split("/", 1)[0] if "/" in image else "docker.io"
            if registry not in cfg["allowedRegistries"]:
                report_violation(f"container {name}: image {image!r} is not from an allowed registry "
                                 f"({', '.join(cfg['allowedRegistries'])}): push it there and pin it")
        if cfg.get("requireDigest") and isinstance(image, str) and not unknown(image) and not DIGEST_RE.search(image):
            report_violation(f"container {name}: image {image!r} is a tag, which can move: this environment runs "
                             "images pinned by digest: set haymaker:agentImage in Pulumi.<env>.yaml to "
                             "<registry>/haymaker-agent@sha256:<digest> (agent-image.yml prints it for each release)")
        res = c.get("resources") or {}
        cpu, mem = res.get("cpu"), res.get("memory")
        if cpu is None or mem is None:
            report_violation(f"container {name}: set cpu and memory explicitly")
            continue
        if not unknown(cpu) and cpu > cfg["maxCpu"]:
            report_violation(f"container {name}: cpu {cpu} is over the ceiling {cfg['maxCpu']}")
        gib = memory_gib(mem)
        if not unknown(mem) and (gib is None or gib > cfg["maxMemoryGi"]):
            report_violation(f"container {name}: memory {mem!r} is over the ceiling {cfg['maxMemoryGi']}Gi")


# 7. locations ------------------------------------------------------------------------------------

def allowed_locations_validator(args, report_violation):
    cfg = args.get_config()
    allowed = [a.lower().replace(" ", "") for a in cfg["allowedLocations"]]
    if args.resource_type == JOB:
        _scenario_locations(args, allowed + list(cfg.get("scenarioLocations") or []), report_violation)
    location = args.props.get("location")
    if not isinstance(location, str) or unknown(location):
        return
    if location.lower().replace(" ", "") not in allowed:
        report_violation(f"location {location!r} is not allowed: use one of {', '.join(allowed)}")


def _scenario_locations(args, allowed: list[str], report_violation) -> None:
    """An agent's az steps may name the locations its scenario declares (services offered only there)."""
    tags = args.props.get("tags") if isinstance(args.props.get("tags"), dict) else {}
    scenario = tags.get("haymaker-scenario")
    if not isinstance(scenario, str) or unknown(scenario):
        return
    try:
        locations = _catalog_locations()
    except Exception as e:  # noqa: BLE001 - say why instead of failing the whole policy run
        report_violation(f"cannot check the locations of scenario {scenario}: the catalog does not load ({e})")
        return
    for name in locations.get(scenario, ()):
        if name not in allowed:
            report_violation(f"scenario {scenario} names location {name!r} in its steps, which this environment "
                             "does not allow: add it to allowed-locations scenarioLocations in "
                             "policies/config.<env>.json, or leave the scenario out")


# 8. Graph permissions ----------------------------------------------------------------------------

def graph_permissions_validator(args, report_violation):
    """No stack declares a Graph app role assignment: granting one is admin consent (it needs
    AppRoleAssignment.ReadWrite.All, which can grant anything), a one-time step a Privileged Role
    Administrator does (`haymaker platform grants` prints it; the allowlist below decides what it prints)."""
    if args.resource_type != APP_ROLE_ASSIGNMENT:
        return
    role = args.props.get("appRoleId")
    escalation = {guid: name for name, guid in GRAPH_ESCALATION_ROLES.items()}.get(role.lower()) \
        if isinstance(role, str) and not unknown(role) else None
    if escalation:
        report_violation(f"Graph permission {escalation} lets its holder grant itself more: no HayMaker identity "
                         "may hold it")
    elif is_run_stack(args.urn):
        report_violation("a run declares no Graph app role assignment (granting one needs "
                         "AppRoleAssignment.ReadWrite.All): Graph scenarios borrow the platform's Graph identities")
    else:
        report_violation("the platform declares no Graph app role assignment (its deployer would need "
                         "AppRoleAssignment.ReadWrite.All): a Privileged Role Administrator grants them once, as "
                         "`haymaker platform grants` prints")


def graph_permission_allowed(name: str, cfg: dict) -> str | None:
    """Why the allowlist of ``cfg`` refuses Graph permission ``name`` (None: allowed)."""
    if name in GRAPH_ESCALATION_ROLES:
        return f"Graph permission {name} lets its holder grant itself more: no HayMaker identity may hold it"
    if name not in cfg["allowedPermissions"]:
        return f"Graph app role {name} is not in the allowlist: use one of {', '.join(cfg['allowedPermissions'])}"
    if name in cfg["highPrivilegePermissions"] and not cfg["allowHighPrivilege"]:
        return f"Graph permission {name} is high-privilege and this environment does not allow it: use a narrower one"
    return None


# 9. secrets --------------------------------------------------------------------------------------

def no_plain_secrets_validator(args, report_violation):
    if args.resource_type not in (JOB, CONTAINER_APP):
        return
    template = args.props.get("template") or {}
    conf = args.props.get("configuration") or {}
    defined = {s.get("name") for s in (conf.get("secrets") or []) if isinstance(s, dict)} if isinstance(conf, dict) else set()
    containers = template.get("containers") if isinstance(template, dict) else None
    for c in containers if isinstance(containers, list) else []:
        for env in c.get("env") or []:
            name = env.get("name", "")
            if env.get("value") is not None and SECRET_NAME_RE.search(name):
                report_violation(f"env {name} carries a plain value: store it as a job secret and use secretRef")
            ref = env.get("secretRef")
            if ref is not None and not unknown(ref) and defined and ref not in defined:
                report_violation(f"env {name} refers to secret {ref!r}, which the job does not define")


def no_secret_in_outputs_validator(args, report_violation):
    """Stack policy: no credential value appears in stack outputs or as another resource's plain value."""
    values = {str(r.props.get("value")) for r in args.resources
              if r.resource_type in PASSWORD_TYPES and isinstance(r.props.get("value"), str)
              and not unknown(r.props.get("value"))}
    if not values:
        return
    for r in args.resources:
        if r.resource_type in PASSWORD_TYPES:
            continue
        props = r.props if r.resource_type == "pulumi:pulumi:Stack" else {
            k: v for k, v in r.props.items() if k not in ("configuration",)}
        if _contains(props, values):
            where = "stack outputs" if r.resource_type == "pulumi:pulumi:Stack" else r.name
            report_violation(f"a credential value appears in {where}: pass it only as a job secret", r.urn)


def _contains(value, needles) -> bool:
    if isinstance(value, str):
        return value in needles
    if isinstance(value, dict):
        return any(_contains(v, needles) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains(v, needles) for v in value)
    return False


# 10. scenarios per run ---------------------------------------------------------------------------

def scenario_limits_validator(args, report_violation):
    agents = [r for r in args.resources if r.resource_type == AGENT]
    limit = args.get_config()["maxScenarios"]
    if len(agents) > limit:
        report_violation(f"{len(agents)} scenarios in one run; the limit is {limit}: pick fewer")
    per_scenario: dict[str, int] = {}
    for job in (r for r in args.resources if r.resource_type == JOB):
        scenario = (job.props.get("tags") or {}).get("haymaker-scenario") if isinstance(job.props.get("tags"), dict) else None
        if scenario and not unknown(scenario):
            per_scenario[scenario] = per_scenario.get(scenario, 0) + 1
    for scenario, count in sorted(per_scenario.items()):
        if count > 1:
            report_violation(f"scenario {scenario} has {count} agents; a run gives each scenario one agent")


# 11. cost (advisory) -----------------------------------------------------------------------------

def run_cost_validator(args, report_violation):
    from haymaker.cost import RATES_USD

    catalog_costs = _catalog_hourly_costs()
    total = 0.0
    for job in (r for r in args.resources if r.resource_type == JOB):
        conf = job.props.get("configuration") or {}
        seconds = conf.get("replicaTimeout") if isinstance(conf, dict) else None
        if not isinstance(seconds, (int, float)):
            continue
        for c in (job.props.get("template") or {}).get("containers") or []:
            res = c.get("resources") or {}
            cpu, gib = res.get("cpu"), memory_gib(res.get("memory"))
            if isinstance(cpu, (int, float)) and gib is not None:
                total += seconds * (cpu * RATES_USD["container_apps_vcpu_second"]
                                    + gib * RATES_USD["container_apps_gib_second"])
        tags = job.props.get("tags") if isinstance(job.props.get("tags"), dict) else {}
        total += catalog_costs.get(tags.get("haymaker-scenario"), 0.0) * seconds / 3600
    threshold = args.get_config()["warnAboveUsd"]
    if total > threshold:
        report_violation(f"estimated run cost ${total:.2f} is over the warning threshold ${threshold:.2f}: "
                         "consider fewer or cheaper scenarios or a shorter duration")


def _catalog():
    """The catalog the offline check plans with (haymaker/policycheck.py sets it); else the repository's,
    as the engine's pack reads it."""
    from scenarios.catalog import load_catalog

    return CATALOG.get() or load_catalog()


def _catalog_locations() -> dict[str, tuple[str, ...]]:
    return {n: s.locations for n, s in _catalog().scenarios.items()}


def _catalog_hourly_costs() -> dict[str, float]:
    try:
        return {n: s.estimated_hourly_cost_usd for n, s in _catalog().scenarios.items()}
    except Exception:  # noqa: BLE001 - an advisory estimate must never break a deployment
        return {}


# The pack --------------------------------------------------------------------------------------

def _schema(**props) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=props)


DEFAULT_LOCATIONS = ["swedencentral", "northeurope", "westeurope"]
DEFAULT_REGISTRIES = ["haymakerdev.azurecr.io", "haymakerprod.azurecr.io"]

POLICIES = [
    ResourceValidationPolicy(
        name="haymaker-required-tags",
        description="Every taggable Azure resource of a run stack carries the five HayMaker tags.",
        validate=required_tags_validator),
    StackValidationPolicy(
        name="agent-role-assignment-rg-scope",
        description="Role assignments only at a resource group declared by the same stack.",
        validate=role_assignment_scope_validator),
    ResourceValidationPolicy(
        name="agent-no-privileged-roles",
        description="No Owner, User Access Administrator or RBAC Administrator for agents.",
        validate=no_privileged_roles_validator,
        config_schema=_schema(forbiddenRoleIds={"type": "array", "items": {"type": "string"},
                                                "default": sorted(PRIVILEGED_ROLE_GUIDS)})),
    ResourceValidationPolicy(
        name="agent-sensitive-roles",
        description="Data-owner, identity-management, policy and registry-push roles only where the environment "
                    "allows them.",
        validate=sensitive_roles_validator,
        config_schema=_schema(allowedRoles={"type": "array", "items": {"type": "string"}, "default": []})),
    ResourceValidationPolicy(
        name="agent-role-assignment-principal-type",
        description="Agent role assignments set principalType to ServicePrincipal.",
        validate=principal_type_validator),
    StackValidationPolicy(
        name="agent-credential-expiry",
        description="Every password credential ends no later than the run's expiry plus the grace.",
        validate=credential_expiry_validator,
        config_schema=_schema(graceMinutes={"type": "integer", "minimum": 0, "default": 60})),
    ResourceValidationPolicy(
        name="agent-job-limits",
        description="Agent jobs: bounded timeout, CPU, memory and retries; no ingress; allowed registries; images "
                    "by digest where required.",
        validate=job_limits_validator,
        config_schema=_schema(
            maxReplicaTimeoutSeconds={"type": "integer", "default": 10 * 3600 + 30 * 60},
            maxCpu={"type": "number", "default": 2.0},
            maxMemoryGi={"type": "number", "default": 4.0},
            maxRetryLimit={"type": "integer", "default": 1},
            allowedRegistries={"type": "array", "items": {"type": "string"}, "default": DEFAULT_REGISTRIES},
            requireDigest={"type": "boolean", "default": False})),
    ResourceValidationPolicy(
        name="allowed-locations",
        description="Resources only in allowed locations.",
        validate=allowed_locations_validator,
        config_schema=_schema(allowedLocations={"type": "array", "items": {"type": "string"},
                                                "default": DEFAULT_LOCATIONS},
                              # Named only by scenario steps (a scenario's locations:), never by stack resources.
                              scenarioLocations={"type": "array", "items": {"type": "string"}, "default": []})),
    ResourceValidationPolicy(
        name="graph-permissions-allowlist",
        description="No Graph app role assignment in any stack (a person grants them once); the allowlist decides "
                    "what `haymaker platform grants` prints.",
        validate=graph_permissions_validator,
        config_schema=_schema(
            allowedPermissions={"type": "array", "items": {"type": "string"}, "default": sorted(GRAPH_APP_ROLES)},
            highPrivilegePermissions={"type": "array", "items": {"type": "string"},
                                      "default": list(HIGH_PRIVILEGE_GRAPH)},
            allowHighPrivilege={"type": "boolean", "default": False})),
    ResourceValidationPolicy(
        name="no-plain-secrets",
        description="Secrets reach containers only through secretRef, never as plain env values.",
        validate=no_plain_secrets_validator),
    StackValidationPolicy(
        name="no-credential-in-outputs",
        description="No credential value in stack outputs or in another resource's plain properties.",
        validate=no_secret_in_outputs_validator),
    StackValidationPolicy(
        name="run-scenario-limits",
        description="At most N scenarios per run, and one agent per scenario.",
        validate=scenario_limits_validator,
        config_schema=_schema(maxScenarios={"type": "integer", "minimum": 1, "default": 30})),
    StackValidationPolicy(
        name="run-cost-warning",
        description="Warn when the estimated run cost is over the threshold.",
        validate=run_cost_validator,
        enforcement_level=EnforcementLevel.ADVISORY,
        config_schema=_schema(warnAboveUsd={"type": "number", "default": 100})),
]
