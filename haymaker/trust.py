"""The trust model: every identity HayMaker uses, who may obtain it, and what it holds.

One table per environment (``table``): for each identity, the GitHub OIDC subjects that may obtain it
(always a GitHub Environment of its own HayMaker environment: never a branch, a tag or a pull request),
its Azure roles with their scopes and conditions, its Microsoft Graph permissions and directory roles,
who creates it and who grants each right (a person once, the platform program, or a run), and the
workflow jobs that use it. The rule it holds: **no identity a workflow can obtain can grant rights**;
whatever can (a custom role definition, a role assignment without a condition, admin consent) is a
step a person does once, which `haymaker platform bootstrap --print` and `haymaker platform grants`
print and `doctor` verifies.

Derived from it: the platform program's grants (components/deployer.py) and its Graph identities'
federated credentials, the bootstrap steps (haymaker/bootstrap.py), the GitHub Environments and their
protection (`doctor --github`). Tested against it: the workflows, docs/operations.md and the README.
``violations`` lists what breaks the rules; tests/test_trust.py holds them, each with a mutation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from components.roles import BUILTIN_ROLES, GRAPH_APP_ROLES, GRAPH_ESCALATION_ROLES
from haymaker import permissions as p
from haymaker.errors import InvalidInput
from haymaker.naming import short_hash
from haymaker.settings import placeholder_repository

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
PROTECTED = ("prod",)  # environments whose runs and releases wait for a reviewer

# Who creates an identity or grants a right.
PERSON, PLATFORM, RUN = "person", "platform", "run"
APPLICATION, MANAGED_IDENTITY = "application", "managed identity"

# Identity keys.
PLATFORM_DEPLOYER, RUN_DEPLOYER, REAPER, DRIFT = "platform-deployer", "run-deployer", "reaper", "drift-reader"
PUBLISHER, GRAPH_IDENTITY, PULL_IDENTITY, AGENT = "image-publisher", "graph-identity", "pull-identity", "agent"

# Scopes a role is granted at (made concrete by the bootstrap and the platform program).
SUBSCRIPTION, STATE, SECRETS_KEY = "subscription", "state-container", "secrets-key"
LEDGER, REPORTS, REGISTRY, WORKSPACE, AGENT_GROUP = "ledger", "reports", "registry", "workspace", "agent-group"
ADMINISTRATIVE_UNIT = "administrative-unit"

# Rights that can grant rights. An ARM action matching one of these makes its holder able to give itself
# (or anyone) more, except a role assignment write limited by a condition to non-granting roles and to
# service principals (``constrained``).
GRANTING_ACTIONS = ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleDefinitions/write",
                    "Microsoft.Authorization/elevateAccess/Action",
                    "Microsoft.Authorization/roleAssignmentScheduleRequests/write",
                    "Microsoft.Authorization/roleEligibilityScheduleRequests/write")
GRANTING_GRAPH = tuple(sorted(GRAPH_ESCALATION_ROLES))  # AppRoleAssignment, RoleManagement, Directory, Application
GRANTING_GRAPH_PREFIXES = ("RoleManagement.",)
# Actions that read though their name is not */read: a user delegation key signs SAS tokens that carry
# no more than its holder's own (here: read) rights.
READ_ONLY_ACTIONS = ("Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",)
GROUPS_ADMINISTRATOR = "Groups Administrator"
DIRECTORY_ROLE_TEMPLATES = {GROUPS_ADMINISTRATOR: "fdd7a751-b60b-444a-984c-02652fe8fa1c"}
_AGENT_SCOPES = frozenset({"subscription", "agent-group", "run-group", "managed-environment", "pull-identity",
                           "graph-identity"})  # what a custom role at the subscription covers


# --- GitHub Environments ----------------------------------------------------------------------------

@dataclass(frozen=True)
class GitHubEnvironment:
    """A GitHub Environment a job names, and the protection the trust model requires of it."""

    name: str
    environment: str  # the HayMaker environment it belongs to
    purpose: str
    branches: tuple[str, ...] = ()  # deployment branch policies (name patterns)
    tags: tuple[str, ...] = ()  # deployment tag policies
    reviewers: bool = False  # required reviewers
    variables: tuple[str, ...] = ()  # the GitHub variables set on it (no secret: OIDC needs none)

    def subject(self, repository: str) -> str:
        return f"repo:{repository}:environment:{self.name}"


_AZURE = ("AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID")
_STATE = ("PULUMI_BACKEND_URL", "AZURE_STORAGE_ACCOUNT", "HAYMAKER_SECRETS_PROVIDER")
# Set at repository level, because they are not an environment's: which environment scheduled runs use.
REPOSITORY_VARIABLES = ("HAYMAKER_SCHEDULE_ENVIRONMENT", "HAYMAKER_TRUTH_DUE_LIMIT")


def github_environments(env: str) -> tuple[GitHubEnvironment, ...]:
    protected = env in PROTECTED
    return (
        GitHubEnvironment(env, env, "runs: schedule and dispatch from main, release tags", ("main",), ("v*",),
                          protected, ("AZURE_CLIENT_ID", *_AZURE, *_STATE, "HAYMAKER_LEDGER_ENDPOINT")),
        GitHubEnvironment(f"platform-{env}", env, "platform deploys, from release tags only", (), ("v*",), True,
                          ("AZURE_PLATFORM_CLIENT_ID", *_AZURE, *_STATE)),
        GitHubEnvironment(f"reap-{env}", env, "the reaper, on main's schedule", ("main",), (), False,
                          ("AZURE_REAPER_CLIENT_ID", *_AZURE, *_STATE, "HAYMAKER_LEDGER_ENDPOINT",
                           "HAYMAKER_LOG_ANALYTICS_WORKSPACE", "HAYMAKER_REPORTS_CONTAINER_URL")),
        GitHubEnvironment(f"drift-{env}", env, "the daily drift check, read-only", ("main",), (), False,
                          ("AZURE_DRIFT_CLIENT_ID", *_AZURE, *_STATE)),
        GitHubEnvironment(f"release-{env}", env, "agent image builds, from release tags only", (), ("v*",),
                          protected, ("AZURE_PUBLISHER_CLIENT_ID", *_AZURE, "AGENT_REGISTRY")),
    )


# --- roles --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CustomRole:
    """A custom Azure role: a person creates it once (roleDefinitions/write can grant anything)."""

    name: str
    description: str
    actions: tuple[str, ...]
    data_actions: tuple[str, ...] = ()

    @property
    def definition(self) -> p.RoleDefinition:
        return p.RoleDefinition(actions=self.actions, data_actions=self.data_actions)

    def as_json(self, subscription_id: str) -> dict:
        """The document `az role definition create --role-definition` takes."""
        return {"Name": self.name, "IsCustom": True, "Description": self.description, "Actions": list(self.actions),
                "NotActions": [], "DataActions": list(self.data_actions), "NotDataActions": [],
                "AssignableScopes": [f"/subscriptions/{subscription_id}"]}


@dataclass(frozen=True)
class RoleGrant:
    role: str  # a built-in role name, or the name of a custom role of the table
    scope: str  # SUBSCRIPTION, STATE, SECRETS_KEY, LEDGER, REPORTS, REGISTRY, WORKSPACE, AGENT_GROUP
    granted_by: str  # PERSON, PLATFORM or RUN
    condition: str | None = None


@dataclass(frozen=True)
class DirectoryRole:
    role: str
    scope: str  # ADMINISTRATIVE_UNIT, or "tenant"


@dataclass(frozen=True)
class Use:
    workflow: str  # file name under .github/workflows
    job: str  # job id
    only: str | None = None  # the one HayMaker environment the job runs in (the canary: dev)


@dataclass(frozen=True)
class Identity:
    key: str
    environment: str
    name: str  # display name (application) or resource name (managed identity; ``<n>`` for a pool's slot)
    kind: str
    created_by: str
    purpose: str
    github_environments: tuple[str, ...] = ()  # whose jobs may obtain it (federated credentials)
    roles: tuple[RoleGrant, ...] = ()
    graph: tuple[str, ...] = ()  # Microsoft Graph application permissions
    graph_granted_by: str = PERSON
    directory_roles: tuple[DirectoryRole, ...] = ()
    uses: tuple[Use, ...] = ()
    variable: str | None = None  # the GitHub variable holding its client id (on its GitHub Environment)
    scenario: str | None = None  # a Graph identity's scenario
    # Other subject claims (``ref:refs/heads/main``, ``pull_request``): none may be here; the invariants say so.
    other_subjects: tuple[str, ...] = ()

    def subjects(self, repository: str) -> tuple[str, ...]:
        return tuple(f"repo:{repository}:environment:{name}" for name in self.github_environments) + tuple(
            f"repo:{repository}:{claim}" for claim in self.other_subjects)


@dataclass(frozen=True)
class Table:
    environment: str
    identities: tuple[Identity, ...]
    custom_roles: dict[str, CustomRole] = field(default_factory=dict)
    github: tuple[GitHubEnvironment, ...] = ()
    catalog_roles: frozenset[str] = frozenset()  # the roles the catalog's scenarios hold (allowed by policy)
    justified: frozenset[str] = frozenset()  # the run deployer's actions some row of the permission table needs

    def __getitem__(self, key: str) -> Identity:
        found = [i for i in self.identities if i.key == key]
        if len(found) != 1:
            raise KeyError(key)
        return found[0]

    def of_kind(self, key: str) -> list[Identity]:
        return [i for i in self.identities if i.key == key]

    def definition(self, role: str) -> p.RoleDefinition | None:
        if role in self.custom_roles:
            return self.custom_roles[role].definition
        return p.ROLE_DEFINITIONS.get(role)

    def federated(self) -> list[Identity]:
        """The identities a workflow can obtain: those some GitHub subject is trusted by."""
        return [i for i in self.identities if i.github_environments or i.other_subjects]


# --- conditions ---------------------------------------------------------------------------------------

SERVICE_PRINCIPAL = "ServicePrincipal"
_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"


def role_assignment_condition(guids, *, write: bool = True, delete: bool = True) -> str:
    """ABAC condition (version 2.0) limiting role assignment writes and deletes to ``guids`` and to
    service principals, as Azure's "Constrain roles and principal types" example writes it. Writes are
    checked against the request (``@Request``), deletes against the existing assignment (``@Resource``);
    every other action of the role is left unconditioned."""
    guids = sorted({g.lower() for g in guids})
    if not guids:
        raise InvalidInput("no assignable roles: a role assignment condition would allow none")
    ids = ", ".join(guids)

    def only(action: str, source: str) -> str:
        return (f"((!(ActionMatches{{'{_ASSIGNMENTS}/{action}'}})) OR "
                f"({source}[{_ASSIGNMENTS}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{ids}}} AND "
                f"{source}[{_ASSIGNMENTS}:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
                f"{{'{SERVICE_PRINCIPAL}'}}))")

    return " AND ".join([only("write", "@Request")] * write + [only("delete", "@Resource")] * delete)


_CLAUSE = re.compile(r"ActionMatches\{'([^']+)'\}\)\) OR \((@\w+)\[[^\]]+:RoleDefinitionId\] "
                     r"ForAnyOfAnyValues:GuidEquals \{([^}]*)\}(?: AND \2\[[^\]]+:PrincipalType\] "
                     r"ForAnyOfAnyValues:StringEqualsIgnoreCase \{([^}]*)\})?\)\)")


@dataclass(frozen=True)
class Clause:
    action: str
    roles: frozenset[str]  # role definition GUIDs
    principal_types: frozenset[str] | None  # None: any principal type


def condition_clauses(condition: str | None) -> dict[str, Clause]:
    """The clauses of a condition of the shape above, by the action they constrain (lower case)."""
    out = {}
    for action, _, guids, types in _CLAUSE.findall(condition or ""):
        out[action.lower()] = Clause(action, frozenset(g.strip().lower() for g in guids.split(",") if g.strip()),
                                     frozenset(t.strip().strip("'") for t in types.split(",")) if types else None)
    return out


def condition_allows(condition: str | None, action: str, roles: frozenset[str],
                     principal_type: str = SERVICE_PRINCIPAL) -> bool:
    """Whether a condition lets ``action`` hand out (or remove) ``roles`` to ``principal_type``."""
    clause = condition_clauses(condition).get(action.lower())
    if clause is None:
        return True
    return roles <= clause.roles and (clause.principal_types is None or principal_type in clause.principal_types)


# --- what each identity needs, from the permission table --------------------------------------------

def _expanded(ops, catalog) -> list[p.Need]:
    return [n for op in ops for n in p._expand_types(op, catalog).needs]


def _custom_actions(needs) -> tuple[str, ...]:
    """ARM actions a custom role at the subscription must hold for ``needs``; every other read is
    subsumed by ``*/read``, the one wildcard (Resource Graph shows only what its caller may read)."""
    actions = {}
    for n in needs:  # Azure compares actions without case: one spelling of each
        if n.kind == p.ACTION and n.scope in _AGENT_SCOPES:
            actions.setdefault(n.permission.lower(), n.permission)
    if "*/read" in actions:
        actions = {k: v for k, v in actions.items() if not k.endswith("/read")} | {"*/read": "*/read"}
    return tuple(sorted(actions.values(), key=str.lower))


def run_deployer_needs(catalog) -> list[p.Need]:
    """What a run's lifecycle does as the run deployer: everything `up` and `down` need."""
    return ([n for needs in p.PROGRAM_RESOURCES.values() for n in needs]
            + _expanded([op for op in p.ADAPTER_CALLS if op.principal == p.DEPLOYER], catalog))


def reaper_needs(catalog) -> list[p.Need]:
    """What a teardown does (never what only `up` does), plus the answer keys of ended runs."""
    return [n for n in run_deployer_needs(catalog) if n.permission not in p.CREATES]


def platform_needs() -> list[p.Need]:
    return [n for needs in p.PLATFORM_RESOURCES.values() for n in needs] + list(p.PLATFORM_READS)


def graph_needs(principal: str = p.DEPLOYER) -> tuple[str, ...]:
    return tuple(sorted({n.permission for op in p.ADAPTER_CALLS if op.principal == principal for n in op.needs
                         if n.kind == p.GRAPH}))


def catalog_roles(catalog, allowed_sensitive=()) -> frozenset[str]:
    """The roles the catalog's scenarios hold; a sensitive one only when the environment's policy allows it."""
    used = {r for s in catalog.scenarios.values() for r in s.azure_roles}
    return frozenset(r for r in used if r in BUILTIN_ROLES and not BUILTIN_ROLES[r].privileged
                     and BUILTIN_ROLES[r].agent and (not BUILTIN_ROLES[r].sensitive or r in allowed_sensitive))


def _guids(roles) -> list[str]:
    return sorted(BUILTIN_ROLES[r].guid.lower() for r in roles)


# --- the table --------------------------------------------------------------------------------------

def administrative_unit_name(env: str) -> str:
    """The administrative unit a person creates for the groups HayMaker's agents create."""
    return f"HayMaker {env} groups"


def state_account_name(env: str, subscription_id: str) -> str:
    return f"hm{env}state{short_hash('state', subscription_id, env)}"


def state_container_name(env: str) -> str:
    return f"pulumi-{env}"


def state_vault_name(env: str, subscription_id: str) -> str:
    return f"hm{env}kv{short_hash('vault', subscription_id, env)}"


def secrets_key_name(env: str) -> str:
    return f"pulumi-{env}"


def run_deployer_role_name(env: str) -> str:
    return f"HayMaker run deployer ({env})"


def custom_roles(env: str, catalog) -> dict[str, CustomRole]:
    roles = [
        CustomRole(f"HayMaker platform deployer ({env})",
                   f"Deploys the HayMaker platform stack of {env}: what components/platform.py declares, and role "
                   "assignments limited by a condition to the roles the platform grants.",
                   _custom_actions(platform_needs())),
        CustomRole(run_deployer_role_name(env),
                   f"Creates and destroys HayMaker runs of {env}: each action is a row of haymaker/permissions.py; "
                   "role assignments are limited by a condition to the catalog's roles and service principals.",
                   _custom_actions(run_deployer_needs(catalog))),
        CustomRole(f"HayMaker reaper ({env})",
                   f"Tears expired HayMaker runs of {env} down: the run deployer's deletes, purges and reads, none "
                   "of its creates.", _custom_actions(reaper_needs(catalog))),
        CustomRole(f"HayMaker state decrypter ({env})",
                   f"Reads and decrypts with the {env} state secrets key; cannot encrypt, sign or change it.",
                   (), ("Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/decrypt/action")),
    ]
    return {r.name: r for r in roles}


def table(env: str, catalog, *, allowed_sensitive=(), pool_size: int = 3) -> Table:
    """Every identity of environment ``env``, with what it holds; ``allowed_sensitive``: the sensitive
    roles the environment's policy allows agents (policies/config.<env>.json, agent-sensitive-roles)."""
    customs = custom_roles(env, catalog)
    platform_role, run_role, reaper_role, decrypter = list(customs)
    used = catalog_roles(catalog, allowed_sensitive)
    run_condition = role_assignment_condition(_guids(used)) if used else None
    state_rw = (RoleGrant("Storage Blob Data Contributor", STATE, PERSON),
                RoleGrant("Key Vault Crypto User", SECRETS_KEY, PERSON))
    ledger_rw = (RoleGrant("Storage Table Data Contributor", LEDGER, PLATFORM),)
    answer_keys = (RoleGrant("Storage Blob Data Contributor", REPORTS, PLATFORM),
                   RoleGrant("Log Analytics Reader", WORKSPACE, PLATFORM))
    platform_grants = ledger_rw + answer_keys + (RoleGrant("AcrPush", REGISTRY, PLATFORM),
                                                 RoleGrant("AcrPull", REGISTRY, PLATFORM))
    platform_condition = role_assignment_condition(_guids({g.role for g in platform_grants}))
    deployer_graph = graph_needs()
    graph_scenarios = [s for s in catalog.scenarios.values() if s.graph_permissions]
    identities = [
        Identity(PLATFORM_DEPLOYER, env, f"haymaker-{env}-platform", APPLICATION, PERSON,
                 "deploys the platform stack (release tags, after a reviewer)", (f"platform-{env}",),
                 (RoleGrant(platform_role, SUBSCRIPTION, PERSON, platform_condition), *state_rw),
                 uses=(Use("platform.yml", "deploy"),), variable="AZURE_PLATFORM_CLIENT_ID"),
        Identity(RUN_DEPLOYER, env, f"haymaker-{env}-deployer", APPLICATION, PERSON,
                 "creates and destroys runs", (env,),
                 (RoleGrant(run_role, SUBSCRIPTION, PERSON, run_condition), *state_rw, *ledger_rw),
                 deployer_graph, uses=(Use("run.yml", "run"), Use("canary.yml", "canary", "dev"),
                                       Use("canary.yml", "teardown", "dev")), variable="AZURE_CLIENT_ID"),
        Identity(REAPER, env, f"haymaker-{env}-reaper", APPLICATION, PERSON,
                 "tears expired runs down and writes their answer keys", (f"reap-{env}",),
                 (RoleGrant(reaper_role, SUBSCRIPTION, PERSON,
                            role_assignment_condition(_guids(used), write=False) if used else None),
                  *state_rw, *ledger_rw, *answer_keys),
                 deployer_graph, uses=(Use("reap.yml", "reap"), Use("reap.yml", "truth")),
                 variable="AZURE_REAPER_CLIENT_ID"),
        Identity(DRIFT, env, f"haymaker-{env}-drift", APPLICATION, PERSON,
                 "previews the platform stack daily; changes nothing", (f"drift-{env}",),
                 (RoleGrant("Reader", SUBSCRIPTION, PERSON), RoleGrant("Storage Blob Data Reader", STATE, PERSON),
                  RoleGrant(decrypter, SECRETS_KEY, PERSON)),
                 ("Application.Read.All",), uses=(Use("drift.yml", "preview"),), variable="AZURE_DRIFT_CLIENT_ID"),
        Identity(PUBLISHER, env, f"haymaker-{env}-publisher", APPLICATION, PERSON,
                 "pushes the agent image (release tags)", (f"release-{env}",),
                 (RoleGrant("AcrPush", REGISTRY, PLATFORM),), uses=(Use("agent-image.yml", "build-and-push"),),
                 variable="AZURE_PUBLISHER_CLIENT_ID"),
        Identity(PULL_IDENTITY, env, f"haymaker-{env}-agent-pull", MANAGED_IDENTITY, PLATFORM,
                 "agent jobs pull the image with it", (), (RoleGrant("AcrPull", REGISTRY, PLATFORM),)),
        *[Identity(GRAPH_IDENTITY, env, f"haymaker-{env}-graph-{s.name}-<n>", MANAGED_IDENTITY, PLATFORM,
                   f"borrowed by one run at a time for {s.name} ({pool_size} slots); teardown signs in as it",
                   (env, f"reap-{env}"), tuple(RoleGrant(r, AGENT_GROUP, RUN) for r in s.azure_roles if r in used),
                   tuple(s.graph_permissions), PERSON,
                   (DirectoryRole(GROUPS_ADMINISTRATOR, ADMINISTRATIVE_UNIT),)
                   if "group" in p.created_directory_objects(s) else (),
                   uses=(Use("run.yml", "run"), Use("reap.yml", "reap"), Use("canary.yml", "teardown", "dev")),
                   scenario=s.name)
          for s in graph_scenarios],
        Identity(AGENT, env, "haymaker-<run_id>-<scenario>", APPLICATION, RUN,
                 "one per scenario per run: a password that expires with the run, roles on its own group",
                 (), tuple(RoleGrant(r, AGENT_GROUP, RUN) for r in sorted(used))),
    ]
    return Table(env, tuple(identities), customs, github_environments(env), used,
                 frozenset(_custom_actions(run_deployer_needs(catalog))))


def platform_granted_roles(t: Table) -> frozenset[str]:
    """The roles the platform program assigns (its deployer's condition allows exactly these)."""
    return frozenset(g.role for i in t.identities for g in i.roles if g.granted_by == PLATFORM)


# --- the invariants ---------------------------------------------------------------------------------

def granting_rights(t: Table, identity: Identity) -> list[str]:
    """The rights of ``identity`` that can grant rights."""
    out = []
    for g in identity.roles:
        definition = t.definition(g.role)
        if definition is None:
            if not _curated_harmless(g.role):
                out.append(f"{g.role}: a privileged or unknown role (cannot show that it grants nothing)")
            continue
        for action in GRANTING_ACTIONS:
            if not p.role_allows(definition, action, p.ACTION):
                continue
            if action.endswith("/roleAssignments/write") and constrained(t, g.condition):
                continue
            out.append(f"{g.role} at {g.scope}: {action}" + (" without a condition limiting it to non-granting roles "
                                                             "and service principals" if "roleAssignments" in action
                                                             else ""))
    for perm in identity.graph:
        if perm in GRANTING_GRAPH or perm.startswith(GRANTING_GRAPH_PREFIXES):
            out.append(f"Graph {perm}")
    for role in identity.directory_roles:
        if role.scope != ADMINISTRATIVE_UNIT:
            out.append(f"directory role {role.role} at {role.scope} (only one scoped to HayMaker's unit)")
    return out


def constrained(t: Table, condition: str | None) -> bool:
    """A condition that limits role assignment writes and deletes to roles that grant nothing, and to
    service principals."""
    clauses = condition_clauses(condition)
    for action in ("microsoft.authorization/roleassignments/write", "microsoft.authorization/roleassignments/delete"):
        clause = clauses.get(action)
        if clause is None or clause.principal_types != frozenset({SERVICE_PRINCIPAL}):
            return False
        names = {r.guid.lower(): r.name for r in BUILTIN_ROLES.values()}
        for guid in clause.roles:
            name = names.get(guid)
            definition = t.definition(name) if name else None
            if name is None or BUILTIN_ROLES[name].privileged:
                return False
            if definition is None and not _curated_harmless(name):
                return False
            if definition is not None and any(p.role_allows(definition, a, p.ACTION) for a in GRANTING_ACTIONS):
                return False
    return True


def _curated_harmless(role: str) -> bool:
    """A built-in role components/roles.py lists as not privileged: its published definition holds no
    Microsoft.Authorization write (the roles that do are marked privileged there)."""
    return role in BUILTIN_ROLES and not BUILTIN_ROLES[role].privileged


def violations(t: Table, repository: str = "owner/repo") -> list[str]:
    """Every way ``t`` breaks the trust model, each ``<rule>: <identity>: <what>``."""
    out = []
    github = {g.name: g for g in t.github}
    for i in t.federated():
        out += [f"grant: {i.name}: {r}" for r in granting_rights(t, i)]
        for name in i.github_environments:
            gh = github.get(name)
            if gh is None or gh.environment != i.environment:
                out.append(f"trust: {i.name}: trusts GitHub Environment {name!r}, not one of {i.environment}'s")
    for subject in (s for i in t.federated() for s in i.subjects(repository)):
        if ":environment:" not in subject:
            out.append(f"trust: {subject}: a subject other than a GitHub Environment (a branch, tag or pull request)")
    out += _trust_shape(t, github)
    out += _drift(t)
    out += _deployers(t)
    return out


def _trust_shape(t: Table, github: dict[str, GitHubEnvironment]) -> list[str]:
    env, out = t.environment, []
    expected = {PLATFORM_DEPLOYER: (f"platform-{env}",), RUN_DEPLOYER: (env,), REAPER: (f"reap-{env}",),
                DRIFT: (f"drift-{env}",), PUBLISHER: (f"release-{env}",)}
    for key, names in expected.items():
        for i in t.of_kind(key):
            if i.github_environments != names:
                out.append(f"trust: {i.name}: trusted by {list(i.github_environments)}, must be exactly {list(names)}")
    reapers = t.of_kind(REAPER)
    if len(reapers) != 1 or set(reapers[0].github_environments) & set(t[RUN_DEPLOYER].github_environments):
        out.append(f"reaper: {env} needs one reaper of its own, trusted by no run's GitHub Environment")
    for gh in t.github:
        if gh.name.startswith(("platform-", "release-")) and (gh.branches or not gh.tags):
            out.append(f"trust: GitHub Environment {gh.name}: deploys from tags only")
        if gh.name.startswith("platform-") and not gh.reviewers:
            out.append(f"trust: GitHub Environment {gh.name}: needs required reviewers")
        if gh.environment in PROTECTED and gh.name in (gh.environment, f"release-{gh.environment}") \
                and not gh.reviewers:
            out.append(f"trust: GitHub Environment {gh.name}: needs required reviewers")
        if not gh.branches and not gh.tags:
            out.append(f"trust: GitHub Environment {gh.name}: any branch may deploy to it")
    return out


def _drift(t: Table) -> list[str]:
    out = []
    for i in t.of_kind(DRIFT):
        for g in i.roles:
            d = t.definition(g.role)
            changes = [a for a in (d.actions if d else ("?",)) if not a.lower().endswith("/read")
                       and a not in READ_ONLY_ACTIONS]
            changes += [a for a in (d.data_actions if d else ()) if not a.lower().endswith(("/read", "/decrypt/action"))]
            if changes:
                out.append(f"drift: {i.name}: {g.role} can change things ({', '.join(changes)})")
        out += [f"drift: {i.name}: Graph {perm} is not read-only" for perm in i.graph if ".Read." not in perm + "."]
    return out


def _deployers(t: Table) -> list[str]:
    out = []
    deployer = t[RUN_DEPLOYER]
    for g in deployer.roles:
        d = t.definition(g.role)
        if g.scope == SUBSCRIPTION and d is not None:
            wild = [a for a in d.actions if "*" in a and a != "*/read"]
            if wild:
                out.append(f"deployer-actions: {deployer.name}: {g.role} holds wildcard actions {wild}")
            unjustified = sorted(set(d.actions) - t.justified)
            if g.role in t.custom_roles and unjustified:
                out.append(f"deployer-actions: {deployer.name}: {unjustified} justified by no row of "
                           "haymaker/permissions.py")
        if g.condition is not None or "roleAssignments" in " ".join(d.actions if d else ()):
            clauses = condition_clauses(g.condition)
            for action in ("write", "delete"):
                clause = clauses.get(f"microsoft.authorization/roleassignments/{action}")
                if clause is None or clause.roles != frozenset(_guids(t.catalog_roles)) \
                        or clause.principal_types != frozenset({SERVICE_PRINCIPAL}):
                    out.append(f"deployer-condition: {deployer.name}: role assignment {action}s must be limited to "
                               "the catalog's roles and to service principals")
    for guid in (g for c in condition_clauses(next((r.condition for r in deployer.roles if r.condition), None))
                 .values() for g in c.roles):
        role = next((r for r in BUILTIN_ROLES.values() if r.guid.lower() == guid), None)
        if role is None or role.sensitive and role.name not in t.catalog_roles:
            out.append(f"sensitive: {deployer.name}: may assign {role.name if role else guid}, which no scenario "
                       "the policy allows needs")
    return out


def with_identity(t: Table, identity: Identity) -> Table:
    """``t`` with one identity replaced (tests mutate tables this way)."""
    return replace(t, identities=tuple(identity if (i.key, i.scenario) == (identity.key, identity.scenario) else i
                                       for i in t.identities))


def graph_role_ids(permissions) -> list[str]:
    return [GRAPH_APP_ROLES[name] for name in permissions]


def load_table(env: str, catalog=None, *, pool_size: int = 3) -> Table:
    """The table of ``env`` with the sensitive roles its policy config allows agents."""
    from haymaker.policycheck import effective, load_policy_config
    from policies.rules import POLICIES
    from scenarios.catalog import load_catalog

    policy = next(x for x in POLICIES if x.name == "agent-sensitive-roles")
    _, cfg = effective(policy, load_policy_config(env))
    return table(env, catalog or load_catalog(), allowed_sensitive=tuple(cfg.get("allowedRoles") or ()),
                 pool_size=pool_size)


def platform_grants(t: Table) -> list[tuple[str, str, str]]:
    """(identity key, role, scope) of every grant the platform program declares, pull identity aside
    (components/platform.py grants it with the registry)."""
    return [(i.key, g.role, g.scope) for i in t.identities if i.key != PULL_IDENTITY for g in i.roles
            if g.granted_by == PLATFORM]


def object_id_keys(t: Table) -> list[str]:
    """The identities the platform grants to by object id (``haymaker:identityObjectIds``)."""
    return sorted({key for key, _, _ in platform_grants(t)})


GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def check_repository(repository: str) -> None:
    """``owner/repo``, and not the placeholder the repository ships with."""
    owner, _, repo = str(repository or "").partition("/")
    if not owner or not repo or "/" in repo or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}", owner) \
            or not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", repo):
        raise InvalidInput(f"GitHub repository {repository!r} is not owner/repo: name the repository that deploys "
                           "HayMaker, e.g. --repo my-org/haymaker")
    if placeholder_repository(repository):  # what Pulumi.<env>.yaml ships with (haymaker/settings.py)
        raise InvalidInput(f"GitHub repository {repository!r} is the placeholder this repository ships with: set it "
                           "to your repository (haymaker:githubRepository in Pulumi.<env>.yaml, or --repo)")


def check_object_ids(t: Table, object_ids) -> dict[str, str]:
    """The object ids the platform grants to: one GUID per identity that needs one."""
    object_ids = dict(object_ids or {})
    missing = [k for k in object_id_keys(t) if not object_ids.get(k)]
    if missing:
        raise InvalidInput(f"haymaker:identityObjectIds of {t.environment!r} lacks {', '.join(missing)}: set each to "
                           "the object id of that identity's service principal, as `haymaker platform bootstrap "
                           "--print` shows")
    bad = [f"{k}={v!r}" for k, v in object_ids.items() if k not in object_id_keys(t) or not GUID_RE.match(str(v))]
    if bad:
        raise InvalidInput(f"haymaker:identityObjectIds of {t.environment!r}: {', '.join(bad)}: use the keys "
                           f"{', '.join(object_id_keys(t))}, each a service principal object id (a GUID)")
    return object_ids


def separation_violations(tables, subscription_ids: dict[str, str] | None = None) -> list[str]:
    """Environments share nothing: state container, secrets key, identities, GitHub Environments, subjects."""
    subscription_ids = subscription_ids or {t.environment: "" for t in tables}
    out, seen = [], {}

    def once(kind: str, value: str, env: str) -> None:
        other = seen.setdefault((kind, value), env)
        if other != env:
            out.append(f"separation: {kind} {value!r} is shared by {other} and {env}")

    for t in tables:
        env, sub = t.environment, subscription_ids.get(t.environment, "")
        once("state container", f"{state_account_name(env, sub)}/{state_container_name(env)}", env)
        once("secrets key", f"{state_vault_name(env, sub)}/{secrets_key_name(env)}", env)
        for i in t.identities:
            if i.key != AGENT:
                once("identity", i.name, env)
            for subject in i.subjects("owner/repo"):
                once("subject", subject, env)
        for gh in t.github:
            once("GitHub Environment", gh.name, env)
    return out


# --- the table as a reviewer reads it (docs/operations.md and the README carry it; a test compares) ----

_PLACEHOLDER = "zzenv"  # an environment name no one uses, shown as <env>
_SCOPES = {SUBSCRIPTION: "the subscription", STATE: "the state container", SECRETS_KEY: "the state secrets key",
           LEDGER: "the ledger tables", REPORTS: "the reports container", REGISTRY: "the registry",
           WORKSPACE: "the workspace", AGENT_GROUP: "its run's scenario group"}
_BY = {PERSON: "a person, once", PLATFORM: "the platform", RUN: "each run"}


def markdown(catalog=None) -> str:
    """The trust table for any environment, one row per identity (Graph identities and agents as one row
    each: what they hold comes from their scenario), in Markdown."""
    from scenarios.catalog import load_catalog

    t = table(_PLACEHOLDER, catalog or load_catalog())
    github = {g.name: g for g in t.github}
    rows, done = [], set()
    for i in t.identities:
        if i.key in done:
            continue
        done.add(i.key)
        trusted = "; ".join(f"`{n}` ({_protection(github[n])})" for n in i.github_environments) or "none (no subject)"
        roles = "; ".join(_role_text(t, g, i) for g in i.roles) or "none"
        if i.key == GRAPH_IDENTITY:
            roles = f"its scenario's roles on {_SCOPES[AGENT_GROUP]} (each run)"
            graph = (f"its scenario's ({_BY[PERSON]}); for a scenario that creates groups, {GROUPS_ADMINISTRATOR} "
                     f"scoped to the unit `{administrative_unit_name(_PLACEHOLDER)}` ({_BY[PERSON]})")
        elif i.key == AGENT:
            roles = f"its scenario's roles on its own group (each run)"
            graph = "none"
        else:
            graph = f"{', '.join(i.graph)} ({_BY[i.graph_granted_by]})" if i.graph else "none"
        uses = ", ".join(f"`{u.workflow}` {u.job}" + (f" ({u.only} only)" if u.only else "") for u in i.uses) or "—"
        name = i.name.replace(f"-{i.scenario}-", "-<scenario>-") if i.scenario else i.name
        rows.append(f"| {i.key} | `{name}` | {trusted} | {roles} | {graph} | {uses} |")
    head = ["| identity | name | obtained by (GitHub Environment) | Azure roles | Microsoft Graph | used by |",
            "|---|---|---|---|---|---|"]
    return "\n".join(head + rows).replace(_PLACEHOLDER, "<env>") + "\n"


def _protection(g: GitHubEnvironment) -> str:
    refs = [f"branch {b}" for b in g.branches] + [f"tags {x}" for x in g.tags]
    if g.name.startswith("platform-"):
        return ", ".join(refs) + ", reviewers"
    protected = {x.name for env in PROTECTED for x in github_environments(env) if x.reviewers}
    mirrored = {n.replace(PROTECTED[0], g.environment) for n in protected} if PROTECTED else set()
    return ", ".join(refs) + (f", reviewers in {' and '.join(PROTECTED)}" if g.name in mirrored else "")


def _role_text(t: Table, g: RoleGrant, identity: Identity) -> str:
    text = f"{g.role} on {_SCOPES[g.scope]} ({_BY[g.granted_by]})"
    if g.condition:
        guids = {guid for c in condition_clauses(g.condition).values() for guid in c.roles}
        names = sorted(r.name for r in BUILTIN_ROLES.values() if r.guid.lower() in guids)
        which = "the catalog's roles" if set(names) == set(t.catalog_roles) and identity.key != PLATFORM_DEPLOYER \
            else ", ".join(names)
        actions = sorted(c.action.rsplit("/", 1)[-1] for c in condition_clauses(g.condition).values())
        text += f", role assignment {' and '.join(actions)} only of {which}, to service principals"
    return text
