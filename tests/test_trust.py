"""The trust model's invariants (haymaker/trust.py), each with the mutations that break it.

Every invariant holds for the table of every environment as the catalog and the policy configs make
it; each mutation is one careless change (a role added, a subject trusted, a condition loosened) and
must make exactly that invariant fail. Nothing here depends on what the catalog holds today: fixture
catalogs derive from it by adding a scenario.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from components.roles import BUILTIN_ROLES
from haymaker import trust
from haymaker.trust import (DRIFT, GRAPH_IDENTITY, PLATFORM_DEPLOYER, PUBLISHER, REAPER, RUN_DEPLOYER, CustomRole,
                            DirectoryRole, RoleGrant, violations, with_identity)
from scenarios.catalog import Catalog
from stacks.config import PLATFORM_STACKS

REPO = "acme/haymaker"


@pytest.fixture(scope="module")
def tables():
    return {env: trust.load_table(env) for env in PLATFORM_STACKS}


@pytest.fixture(scope="module")
def dev(tables):
    return tables["dev"]


def rules(t) -> set[str]:
    return {v.split(":", 1)[0] for v in violations(t, REPO)}


def add_role(t, key, grant):
    identity = t.of_kind(key)[0]
    return with_identity(t, replace(identity, roles=identity.roles + (grant,)))


def set_condition(t, key, condition):
    identity = t[key]
    roles = tuple(replace(g, condition=condition) if g.condition is not None or g.scope == trust.SUBSCRIPTION
                  and g.role in t.custom_roles else g for g in identity.roles)
    return with_identity(t, replace(identity, roles=roles))


def with_custom(t, name, actions):
    return replace(t, custom_roles={**t.custom_roles, name: CustomRole(name, "mutation", tuple(actions))})


def guid(role):
    return BUILTIN_ROLES[role].guid


def test_every_environment_holds_every_invariant(tables):
    for env, t in tables.items():
        assert violations(t, REPO) == [], env
    assert trust.separation_violations(tables.values(), {e: "00000000-0000-0000-0000-00000000000" + str(n)
                                                        for n, e in enumerate(tables)}) == []


# --- 1. no identity a workflow can obtain can grant rights --------------------------------------------

def test_the_identities_a_workflow_can_obtain(dev):
    obtainable = {i.key for i in dev.federated()}
    assert obtainable == {PLATFORM_DEPLOYER, RUN_DEPLOYER, REAPER, DRIFT, PUBLISHER, GRAPH_IDENTITY} - (
        set() if dev.of_kind(GRAPH_IDENTITY) else {GRAPH_IDENTITY})
    for i in dev.federated():
        assert trust.granting_rights(dev, i) == [], i.name
    # The two that write role assignments hold them only under a condition.
    for key in (PLATFORM_DEPLOYER, RUN_DEPLOYER):
        (custom,) = [g for g in dev[key].roles if g.role in dev.custom_roles]
        assert trust.constrained(dev, custom.condition), key


GRANTING_MUTATIONS = [
    ("Owner for the run deployer", lambda t: add_role(t, RUN_DEPLOYER, RoleGrant("Owner", trust.SUBSCRIPTION,
                                                                                 trust.PERSON))),
    ("User Access Administrator for the reaper",
     lambda t: add_role(t, REAPER, RoleGrant("User Access Administrator", trust.SUBSCRIPTION, trust.PERSON))),
    ("unconstrained RBAC Administrator for the platform deployer",
     lambda t: add_role(t, PLATFORM_DEPLOYER, RoleGrant("Role Based Access Control Administrator", trust.SUBSCRIPTION,
                                                        trust.PERSON))),
    ("role definition writes for the publisher", lambda t: add_role(
        with_custom(t, "defs", ["Microsoft.Authorization/roleDefinitions/write"]), PUBLISHER,
        RoleGrant("defs", trust.SUBSCRIPTION, trust.PERSON))),
    ("Microsoft.Authorization/* for the drift reader", lambda t: add_role(
        with_custom(t, "auth", ["Microsoft.Authorization/*"]), DRIFT, RoleGrant("auth", trust.SUBSCRIPTION, trust.PERSON))),
    ("the run deployer's condition removed", lambda t: set_condition(t, RUN_DEPLOYER, None)),
    ("the run deployer may assign Owner", lambda t: set_condition(
        t, RUN_DEPLOYER, trust.role_assignment_condition([guid("Owner"), guid("Reader")]))),
    ("the run deployer may assign to users", lambda t: set_condition(
        t, RUN_DEPLOYER, trust.role_assignment_condition([guid("Reader")]).replace("'ServicePrincipal'", "'User'"))),
    ("the run deployer's deletes unconditioned", lambda t: set_condition(
        t, RUN_DEPLOYER, trust.role_assignment_condition([guid("Reader")], delete=False))),
    # A custom role's id is no built-in's: nothing shows it grants nothing (the run deployer's, say).
    ("the platform deployer may assign a custom role", lambda t: set_condition(
        t, PLATFORM_DEPLOYER, trust.role_assignment_condition([guid("AcrPull"), "8e1d4c2a-0000-4000-8000-00000000c0de"]))),
    ("the platform deployer may assign RBAC Administrator", lambda t: set_condition(
        t, PLATFORM_DEPLOYER, trust.role_assignment_condition([guid("AcrPull"),
                                                                guid("Role Based Access Control Administrator")]))),
    ("AppRoleAssignment.ReadWrite.All for the run deployer",
     lambda t: with_identity(t, replace(t[RUN_DEPLOYER], graph=t[RUN_DEPLOYER].graph + ("AppRoleAssignment.ReadWrite.All",)))),
    ("RoleManagement.ReadWrite.Directory for the reaper",
     lambda t: with_identity(t, replace(t[REAPER], graph=("RoleManagement.ReadWrite.Directory",)))),
    ("RoleManagement.Read.Directory for the drift reader",
     lambda t: with_identity(t, replace(t[DRIFT], graph=("RoleManagement.Read.Directory",)))),
    ("Directory.ReadWrite.All for the platform deployer",
     lambda t: with_identity(t, replace(t[PLATFORM_DEPLOYER], graph=("Directory.ReadWrite.All",)))),
    ("Application.ReadWrite.All for the publisher",
     lambda t: with_identity(t, replace(t[PUBLISHER], graph=("Application.ReadWrite.All",)))),
    ("a tenant-wide Groups Administrator for a Graph identity", lambda t: with_identity(t, replace(
        t.of_kind(GRAPH_IDENTITY)[0], directory_roles=(DirectoryRole(trust.GROUPS_ADMINISTRATOR, "tenant"),)))),
]


@pytest.mark.parametrize("what, mutate", GRANTING_MUTATIONS, ids=[m[0] for m in GRANTING_MUTATIONS])
def test_mutation_a_right_that_grants_rights_breaks_the_first_invariant(dev, what, mutate):
    if "Graph identity" in what and not dev.of_kind(GRAPH_IDENTITY):
        pytest.skip("the catalog has no Graph scenario")
    found = [v for v in violations(mutate(dev), REPO) if v.startswith("grant:")]
    assert found, what


# --- 2. Graph grants are a person's one-time step; the platform declares none --------------------------

def test_graph_rights_are_granted_by_a_person_and_only_read_by_haymaker(dev):
    for i in dev.identities:
        assert i.graph_granted_by == trust.PERSON or not i.graph, i.name
    # What the group-creating scenarios need is a role scoped to HayMaker's administrative unit, nothing wider.
    for i in dev.of_kind(GRAPH_IDENTITY):
        assert all(r == DirectoryRole(trust.GROUPS_ADMINISTRATOR, trust.ADMINISTRATIVE_UNIT) for r in i.directory_roles)


def test_mutation_a_platform_that_declares_a_graph_grant_is_refused_by_policy():
    import pulumi_azuread as azuread

    from haymaker import policycheck
    from haymaker.mockrun import evaluate
    from stacks.config import load_platform_settings
    from stacks.platform import platform_program
    from tests.conftest import bootstrapped

    def mutated():
        outputs = platform_program(bootstrapped(load_platform_settings("dev")))
        azuread.AppRoleAssignment("graph-grant", app_role_id="bf7b1a76-6e77-406b-b258-bf5c7720e98f",
                                  principal_object_id="p", resource_object_id="g")
        return outputs

    declared, _ = evaluate(mutated, project="haymaker", stack="dev")
    found = policycheck.check(declared, {}, {}, policycheck.load_policy_config("dev"))
    assert [(v.policy, v.resource) for v in found] == [("graph-permissions-allowlist", "graph-grant")]
    assert "a Privileged Role Administrator grants them once" in found[0].message


# --- 3. trust: own GitHub Environment only; platform-<env> tags with reviewers; drift reads; reaper apart ---

def test_each_identity_trusts_its_own_environments_only(tables):
    for env, t in tables.items():
        expected = {PLATFORM_DEPLOYER: [f"platform-{env}"], RUN_DEPLOYER: [env], REAPER: [f"reap-{env}"],
                    DRIFT: [f"drift-{env}"], PUBLISHER: [f"release-{env}"]}
        for key, names in expected.items():
            assert list(t[key].github_environments) == names
            assert all(":environment:" in s for s in t[key].subjects(REPO))
        for i in t.of_kind(GRAPH_IDENTITY):
            assert sorted(i.github_environments) == sorted([env, f"reap-{env}"])
        github = {g.name: g for g in t.github}
        assert github[f"platform-{env}"].tags == ("v*",) and github[f"platform-{env}"].branches == ()
        assert github[f"platform-{env}"].reviewers
        assert github[f"reap-{env}"].branches == ("main",) and github[f"drift-{env}"].branches == ("main",)
    assert {g.name: g.reviewers for g in tables["prod"].github}["prod"]


TRUST_MUTATIONS = [
    ("the run deployer trusts main", "trust",
     lambda t: with_identity(t, replace(t[RUN_DEPLOYER], other_subjects=("ref:refs/heads/main",)))),
    ("the reaper trusts pull requests", "trust",
     lambda t: with_identity(t, replace(t[REAPER], other_subjects=("pull_request",)))),
    ("the platform deployer trusts a tag ref", "trust",
     lambda t: with_identity(t, replace(t[PLATFORM_DEPLOYER], other_subjects=("ref:refs/tags/v1.0.0",)))),
    ("the platform deployer trusts the run environment", "trust",
     lambda t: with_identity(t, replace(t[PLATFORM_DEPLOYER], github_environments=("platform-dev", "dev")))),
    ("the run deployer trusts prod", "trust",
     lambda t: with_identity(t, replace(t[RUN_DEPLOYER], github_environments=("dev", "prod")))),
    ("platform-dev without reviewers", "trust", lambda t: replace(t, github=tuple(
        replace(g, reviewers=False) if g.name == "platform-dev" else g for g in t.github))),
    ("platform-dev deploys from main", "trust", lambda t: replace(t, github=tuple(
        replace(g, branches=("main",)) if g.name == "platform-dev" else g for g in t.github))),
    ("reap-dev from any branch", "trust", lambda t: replace(t, github=tuple(
        replace(g, branches=()) if g.name == "reap-dev" else g for g in t.github))),
    ("drift holds Contributor", "drift",
     lambda t: add_role(t, DRIFT, RoleGrant("Contributor", trust.SUBSCRIPTION, trust.PERSON))),
    ("drift encrypts with the state key", "drift",
     lambda t: add_role(t, DRIFT, RoleGrant("Key Vault Crypto User", trust.SECRETS_KEY, trust.PERSON))),
    ("drift writes applications", "drift",
     lambda t: with_identity(t, replace(t[DRIFT], graph=("Application.ReadWrite.OwnedBy",)))),
    ("the reaper is the run deployer's environment", "reaper",
     lambda t: with_identity(t, replace(t[REAPER], github_environments=("dev",)))),
]


@pytest.mark.parametrize("what, rule, mutate", TRUST_MUTATIONS, ids=[m[0] for m in TRUST_MUTATIONS])
def test_mutation_a_loosened_trust_breaks_the_third_invariant(dev, what, rule, mutate):
    assert rule in rules(mutate(dev)), what


def test_prod_without_reviewers_breaks_the_third_invariant(tables):
    prod = tables["prod"]
    for name in ("prod", "release-prod", "platform-prod"):
        mutated = replace(prod, github=tuple(replace(g, reviewers=False) if g.name == name else g for g in prod.github))
        assert f"trust: GitHub Environment {name}: needs required reviewers" in violations(mutated, REPO)


def test_drift_can_change_nothing(tables):
    for t in tables.values():
        drift = t[DRIFT]
        for g in drift.roles:
            d = t.definition(g.role)
            assert all(a.endswith("/read") or a in trust.READ_ONLY_ACTIONS for a in d.actions), g.role
            assert all(a.endswith(("/read", "/decrypt/action")) for a in d.data_actions), g.role
        assert all(".Read." in perm for perm in drift.graph)


def test_the_reaper_has_its_own_identity_per_environment_and_creates_nothing(tables):
    reapers = [t[REAPER] for t in tables.values()]
    assert len({r.name for r in reapers}) == len(reapers) == len(tables)
    for t in tables.values():
        (role,) = [g for g in t[REAPER].roles if g.role in t.custom_roles]
        actions = set(t.custom_roles[role.role].actions)
        run = set(t.custom_roles[next(g.role for g in t[RUN_DEPLOYER].roles if g.role in t.custom_roles)].actions)
        assert actions <= run and not actions & set(trust.p.CREATES)
        assert set(trust.condition_clauses(role.condition)) == {"microsoft.authorization/roleassignments/delete"}


# --- 4. the run deployer: enumerated, justified actions; a condition derived from the catalog -------------

def test_the_run_deployer_holds_no_wildcard_and_each_action_is_a_row_of_the_permission_table(dev):
    (grant,) = [g for g in dev[RUN_DEPLOYER].roles if g.role in dev.custom_roles]
    actions = dev.custom_roles[grant.role].actions
    assert [a for a in actions if "*" in a] == ["*/read"]
    assert set(actions) == dev.justified
    needed = {n.permission for n in trust.run_deployer_needs(_catalog()) if n.kind == trust.p.ACTION}
    assert set(actions) - {"*/read"} <= needed


def test_the_condition_allows_exactly_the_catalogs_roles_to_service_principals_on_write_and_delete(dev):
    (grant,) = [g for g in dev[RUN_DEPLOYER].roles if g.condition]
    clauses = trust.condition_clauses(grant.condition)
    used = {guid(r) for r in dev.catalog_roles}
    for action in ("write", "delete"):
        clause = clauses[f"microsoft.authorization/roleassignments/{action}"]
        assert clause.roles == used and clause.principal_types == {"ServicePrincipal"}
    assert len(grant.condition) <= 8192  # Azure's limit for a condition
    assert trust.condition_allows(grant.condition, "Microsoft.App/jobs/write", frozenset({guid("Owner")}))
    assert not trust.condition_allows(grant.condition, "Microsoft.Authorization/roleAssignments/write",
                                      frozenset({guid("Owner")}))
    some = frozenset({next(iter(used))})
    assert trust.condition_allows(grant.condition, "Microsoft.Authorization/roleAssignments/delete", some)
    assert not trust.condition_allows(grant.condition, "Microsoft.Authorization/roleAssignments/write", some, "User")


def test_adding_a_role_to_a_scenario_changes_the_condition(catalog):
    """Derived from the catalog: a new role in a scenario is a new GUID in the condition a person grants."""
    name = "DNS Zone Contributor" if "DNS Zone Contributor" not in trust.catalog_roles(catalog) else "Backup Contributor"
    before = trust.table("dev", catalog)
    after = trust.table("dev", _with_scenario_roles(catalog, (name,)))
    added = {c.roles for c in trust.condition_clauses(next(g.condition for g in after[RUN_DEPLOYER].roles
                                                             if g.condition)).values()}
    assert added == {frozenset(guid(r) for r in before.catalog_roles | {name})}
    assert violations(after, REPO) == []


def test_a_sensitive_role_enters_the_condition_only_when_a_scenario_needs_it_and_policy_allows_it(catalog):
    needing = _with_scenario_roles(catalog, ("Managed Identity Contributor",))
    assert "Managed Identity Contributor" not in trust.table("dev", needing).catalog_roles
    allowed = trust.table("dev", needing, allowed_sensitive=("Managed Identity Contributor",))
    assert "Managed Identity Contributor" in allowed.catalog_roles
    # Allowed by policy but needed by no scenario: not assignable.
    only_reader = _with_scenario_roles(catalog, ("Reader",), alone=True)
    assert trust.table("dev", only_reader, allowed_sensitive=("Key Vault Administrator",)).catalog_roles == {"Reader"}
    # Agents may never hold the pruned ones: no scenario may declare them.
    for role in ("AcrPush", "Azure Event Hubs Data Owner", "Azure Service Bus Data Owner", "Managed Identity Operator"):
        assert not BUILTIN_ROLES[role].agent


DEPLOYER_MUTATIONS = [
    ("a subscription-wide * action", "deployer-actions", lambda t: _extend(t, ["*"])),
    ("a provider wildcard", "deployer-actions", lambda t: _extend(t, ["Microsoft.Compute/*"])),
    ("an action no row needs", "deployer-actions", lambda t: _extend(t, ["Microsoft.KeyVault/vaults/write"])),
    ("a role the catalog does not use", "deployer-condition", lambda t: set_condition(
        t, RUN_DEPLOYER, trust.role_assignment_condition([guid(r) for r in t.catalog_roles | {"Backup Contributor"}]))),
    ("a sensitive role no scenario needs", "sensitive", lambda t: set_condition(
        t, RUN_DEPLOYER, trust.role_assignment_condition([guid(r) for r in t.catalog_roles | {"AcrPush"}]))),
    ("any principal type", "deployer-condition", lambda t: set_condition(t, RUN_DEPLOYER, trust.role_assignment_condition(
        [guid(r) for r in t.catalog_roles]).replace(
        " AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:"
        "StringEqualsIgnoreCase {'ServicePrincipal'}", ""))),
    ("deletes unconditioned", "deployer-condition", lambda t: set_condition(
        t, RUN_DEPLOYER, trust.role_assignment_condition([guid(r) for r in t.catalog_roles], delete=False))),
]


@pytest.mark.parametrize("what, rule, mutate", DEPLOYER_MUTATIONS, ids=[m[0] for m in DEPLOYER_MUTATIONS])
def test_mutation_a_broader_run_deployer_breaks_the_fourth_invariant(dev, what, rule, mutate):
    assert rule in rules(mutate(dev)), what


# --- 5. environments are apart: state, key, identities, subjects -----------------------------------------

def test_each_environment_has_its_own_state_container_secrets_key_and_identities(tables):
    subs = {"dev": "00000000-0000-0000-0000-0000000000d0", "staging": "00000000-0000-0000-0000-0000000000d1",
            "prod": "00000000-0000-0000-0000-0000000000d2"}
    names = {env: (trust.state_container_name(env), trust.secrets_key_name(env)) for env in tables}
    assert len(set(names.values())) == len(tables)
    for env in tables:
        assert len(trust.state_account_name(env, subs[env])) <= 24 and len(trust.state_vault_name(env, subs[env])) <= 24
    # One subscription for all (not recommended) still keeps them apart by name.
    assert trust.separation_violations(tables.values(), {e: subs["dev"] for e in tables}) == []


def test_mutation_a_shared_state_container_breaks_the_fifth_invariant(tables, monkeypatch):
    monkeypatch.setattr(trust, "state_container_name", lambda env: "pulumi-state")
    monkeypatch.setattr(trust, "state_account_name", lambda env, sub: "hmstate")
    found = trust.separation_violations(tables.values())
    assert "separation: state container 'hmstate/pulumi-state' is shared by dev and staging" in found


def test_mutation_an_identity_shared_by_two_environments_breaks_the_fifth_invariant(tables):
    dev, prod = tables["dev"], tables["prod"]
    shared = with_identity(prod, replace(prod[RUN_DEPLOYER], name=dev[RUN_DEPLOYER].name))
    assert any("identity 'haymaker-dev-deployer' is shared by dev and prod" in v
               for v in trust.separation_violations([dev, shared]))


# --- bad input --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("repository, message", [
    ("", "is not owner/repo"), ("acme", "is not owner/repo"), ("acme/hay/maker", "is not owner/repo"),
    ("your-org/haymaker", "is the placeholder this repository ships with"),
])
def test_a_missing_or_placeholder_repository_is_refused(repository, message):
    from haymaker.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        trust.check_repository(repository)


# --- helpers ----------------------------------------------------------------------------------------------

def _catalog():
    from scenarios.catalog import load_catalog

    return load_catalog()


def _with_scenario_roles(catalog, roles, alone: bool = False) -> Catalog:
    """The catalog plus one scenario (a copy of its first) that holds ``roles``; ``alone``: that one only."""
    base = next(iter(catalog.scenarios.values()))
    extra = replace(base, name=f"{base.area}-99-fixture", azure_roles=tuple(roles), graph_permissions=())
    return replace(catalog, scenarios={**({} if alone else catalog.scenarios), extra.name: extra})


def _extend(t, actions):
    (grant,) = [g for g in t[RUN_DEPLOYER].roles if g.role in t.custom_roles]
    role = t.custom_roles[grant.role]
    return replace(t, custom_roles={**t.custom_roles, grant.role: replace(role, actions=role.actions + tuple(actions))})


# --- the docs describe exactly the identities of the table ----------------------------------------------

@pytest.mark.parametrize("path", ["docs/operations.md", "README.md"])
def test_the_docs_carry_the_trust_table_as_the_code_holds_it(path):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / path).read_text(encoding="utf-8")
    expected = trust.markdown()
    assert expected in text, (f"{path} differs from the trust table: replace its table with the output of "
                              "`python -c 'from haymaker.trust import markdown; print(markdown())'`")
    assert "ref:refs/heads/main`, a tag ref or a pull request" in text or "never a branch, a tag or a pull request" in text


def _docs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", _docs(), ids=lambda p: p.name)
def test_the_docs_name_only_identities_of_the_table(path):
    # Nothing in the README or docs/ names an identity or a subject the table does not hold.
    text = path.read_text(encoding="utf-8")
    t = trust.table("zzenv", _catalog())
    names = {i.name.replace("zzenv", "<env>") for i in t.identities}
    for found in set(re.findall(r"haymaker-<env>-[a-z]+(?:-[a-z]+)*(?:-<scenario>-<n>)?", text)):
        assert found in names or found in {"haymaker-<env>-platform", "haymaker-<env>-state", "haymaker-<env>-logs",
                                           "haymaker-<env>-graph-<scenario>-<n>", "haymaker-<env>-activity-log",
                                           "haymaker-<env>-audit"}, found  # diagnostic settings, not identities
    for gone in ("setup_oidc", "haymaker-github-actions", "deployerClientId", "main-branch federated credential"):
        assert gone not in text, gone


def test_mutation_a_docs_table_that_drops_a_row_fails_the_comparison():
    expected = trust.markdown()
    docs = expected.replace(next(line for line in expected.splitlines() if line.startswith("| reaper ")) + "\n", "")
    assert expected not in docs
