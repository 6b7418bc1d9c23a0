"""The permission table against the platform as declared: a run needs nothing the platform does not
grant, and the platform grants the deployer nothing that no operation needs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from haymaker import permissions as p
from haymaker import trust
from haymaker.mockrun import MOCK_SUBSCRIPTION_ID, evaluate
from stacks.config import load_platform_settings
from tests.conftest import RUN_ID, TEST_OBJECT_IDS, TEST_REPOSITORY, bootstrapped

OBJECT_IDS = {p.DEPLOYER: TEST_OBJECT_IDS["run-deployer"], p.REAPER: TEST_OBJECT_IDS["reaper"],
              p.PUBLISHER: TEST_OBJECT_IDS["image-publisher"]}


@pytest.fixture(scope="module")
def platform():
    from stacks.platform import platform_program

    declared, outputs = evaluate(lambda: platform_program(bootstrapped(load_platform_settings("dev"))),
                                 project="haymaker", stack="dev")
    return declared, outputs


@pytest.fixture(scope="module")
def table():
    return trust.load_table("dev")


def _grants(platform, table):
    """The run's identities' rights: what the platform declares, and what a person grants once (the trust table)."""
    return p.platform_grants(platform[0], OBJECT_IDS) + p.person_grants(table, platform[0], MOCK_SUBSCRIPTION_ID)


@pytest.fixture(scope="module")
def every_scenario(platform, catalog, settings):
    """The run program for a run naming all 50 scenarios, against that platform's outputs."""
    from haymaker.runspec import RunSpec
    from stacks.run import run_program

    spec = RunSpec(run_id=RUN_ID, environment="dev", trigger="local", scenarios=tuple(catalog.names()))
    declared, _ = evaluate(lambda: run_program(spec, settings, catalog), project="haymaker",
                           stack=spec.stack_name, platform_outputs=platform[1])
    return declared


def _check(platform, run, catalog, grants=None, operations=None):
    declared, outputs = platform
    table = trust.load_table("dev", catalog)
    return p.check(operations or p.program_operations(run, catalog),
                   _grants(platform, table) if grants is None else grants,
                   p.Scopes.of(declared, outputs, run), subjects=p.deployer_subjects(table, TEST_REPOSITORY),
                   created_objects={s.name: p.created_directory_objects(s) for s in catalog.scenarios.values()},
                   definitions={name: role.definition for name, role in table.custom_roles.items()})


def test_the_table_has_a_row_for_exactly_the_types_the_run_program_declares(every_scenario):
    declared_types = {d.type for d in every_scenario if d.custom}
    assert declared_types == set(p.PROGRAM_RESOURCES)


def test_the_platform_grants_what_every_run_needs_and_the_deployer_nothing_more(platform, every_scenario, catalog):
    report = _check(platform, every_scenario, catalog)
    assert report.missing == []
    assert report.unused == []
    assert report.unsupported == ["identity.deleted-group.purge: no application permission may permanently delete "
                                  "a group: deleted groups stay 30 days"]


def test_a_run_needing_what_is_not_granted_fails_the_check(platform, every_scenario, catalog, table):
    role = f"HayMaker run deployer (dev)"
    grants = [g for g in _grants(platform, table) if g.name != role]
    report = _check(platform, every_scenario, catalog, grants=grants)
    agent_group = f"/resourceGroups/haymaker-{RUN_ID}-ai-ml-01-cognitive-services-vision"
    assert any(m.startswith("declare azure-native:authorization:RoleAssignment (deployer): needs "
                            "Microsoft.Authorization/roleAssignments/write for /subscriptions/") and m.endswith(agent_group)
               for m in report.missing), report.missing
    # Contributor never writes role assignments (its NotActions take Microsoft.Authorization/*/Write away): the
    # custom role that replaced it must, under its condition.
    contributor = [p.Grant(p.DEPLOYER, "role", "Contributor", f"/subscriptions/{MOCK_SUBSCRIPTION_ID}")]
    missing = _check(platform, every_scenario, catalog, grants=grants + contributor).missing
    assert {m.split(" for ")[0] for m in missing} == {
        "declare azure-native:authorization:RoleAssignment (deployer): needs Microsoft.Authorization/roleAssignments/write",
        "declare azure-native:authorization:RoleAssignment (deployer): needs Microsoft.Authorization/roleAssignments/delete"}
    assert not any("roleAssignments" in m for m in _check(platform, every_scenario, catalog).missing)


def test_the_deployers_condition_must_allow_every_role_a_run_hands_out(platform, every_scenario, catalog, table):
    from components.roles import BUILTIN_ROLES

    storage = BUILTIN_ROLES["Storage Account Contributor"].guid
    grants = [replace(g, condition=g.condition.replace(storage + ", ", "")) if g.condition and g.principal == p.DEPLOYER
              else g for g in _grants(platform, table)]
    missing = _check(platform, every_scenario, catalog, grants=grants).missing
    assert {m.split(" for ")[0] for m in missing} == {
        "declare azure-native:authorization:RoleAssignment (deployer): needs Microsoft.Authorization/roleAssignments/write",
        "declare azure-native:authorization:RoleAssignment (deployer): needs Microsoft.Authorization/roleAssignments/delete"}
    # The condition limits role assignment writes and deletes only.
    (condition,) = [g.condition for g in grants if g.condition and g.principal == p.DEPLOYER]
    assert p.condition_allows(condition, "Microsoft.App/jobs/write", frozenset({storage}))
    assert not p.condition_allows(condition, "Microsoft.Authorization/roleAssignments/write", frozenset({storage}))


def test_a_grant_no_operation_needs_fails_the_check(platform, every_scenario, catalog, table):
    declared, _ = platform
    ledger = next(d.id for d in declared if d.type == "azure-native:storage:StorageAccount")
    extra = [p.Grant(p.DEPLOYER, "role", "AcrPush", ledger, source="extra-acrpush"),
             p.Grant(p.DEPLOYER, "graph", "User.Read.All", source="extra-graph")]
    report = _check(platform, every_scenario, catalog, grants=_grants(platform, table) + extra)
    assert report.missing == []
    assert report.unused == [f"extra-acrpush: AcrPush on {ledger}", "extra-graph: User.Read.All"]


def test_graph_identities_need_their_scenarios_permissions_and_the_deployers_subjects(platform, every_scenario, catalog,
                                                                                      table):
    groups = "identity-03-entra-users-groups"
    subject = f"repo:{TEST_REPOSITORY}:environment:dev"
    grants = [g for g in _grants(platform, table)
              if not (g.principal == f"{p.GRAPH_IDENTITY}:{groups}:1" and g.name in ("Group.Read.All", subject))]
    missing = _check(platform, every_scenario, catalog, grants=grants).missing
    assert f"identity.groups.list (graph-identity:{groups}:1): needs Group.Read.All" in missing
    assert f"identity.group.delete (graph-identity:{groups}:1): needs deployer-subjects for {subject}" in missing
    assert all(f"{groups}:1" in m for m in missing)


def test_an_application_scenarios_identity_needs_what_teardown_does_as_it(platform, every_scenario, catalog, table):
    """identity-01 and identity-04 create applications as their identity: teardown reads, deletes and purges
    them as it, so a slot without Application.Read.All fails the check for each read."""
    apps = "identity-01-service-principals"
    grants = [g for g in _grants(platform, table)
              if not (g.principal == f"{p.GRAPH_IDENTITY}:{apps}:2" and g.name == "Application.Read.All")]
    missing = _check(platform, every_scenario, catalog, grants=grants).missing
    assert sorted(missing) == [f"identity.{row} (graph-identity:{apps}:2): needs Application.Read.All" for row in (
        "application.get", "application.owners", "applications.list", "deleted-applications.list", "deleted-item.get",
        "deleted-service-principals.list", "service-principal.get", "service-principal.owners",
        "service-principals.list")]
    owned = [g for g in _grants(platform, table)
             if not (g.principal == f"{p.GRAPH_IDENTITY}:{apps}:0" and g.name == "Application.ReadWrite.OwnedBy")]
    assert sorted(_check(platform, every_scenario, catalog, grants=owned).missing) == [
        f"identity.{row} (graph-identity:{apps}:0): needs Application.ReadWrite.OwnedBy" for row in (
            "application.delete", "deleted-item.purge", "service-principal.delete")]


def test_teardown_directory_work_follows_what_each_scenario_creates(catalog):
    kinds = {s.name: p.created_directory_objects(s) for s in catalog.scenarios.values() if s.graph_permissions}
    assert kinds == {"identity-01-service-principals": {"application"}, "identity-03-entra-users-groups": {"group"},
                     "identity-04-app-registrations": {"application"}, "identity-05-conditional-access": {"group"},
                     "security-02-entra-id-groups": {"group"}}
    assert not any(p.created_directory_objects(s) for s in catalog.scenarios.values() if not s.graph_permissions)


REQUESTS = [
    ("GET", "/subscriptions/s1", p.DEPLOYER, None, "subscription.get"),
    ("POST", "/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01", p.DEPLOYER, None,
     "resource-graph.query"),
    ("GET", "/subscriptions/s1/resourcegroups?$filter=tagName eq 'haymaker-run'", p.DEPLOYER, None,
     "resource-groups.list"),
    ("GET", "/subscriptions/s1/resourcegroups/haymaker-r-x", p.DEPLOYER, None, "resource-group.get"),
    ("DELETE", "/subscriptions/s1/resourcegroups/haymaker-r-x?api-version=2024-03-01", p.DEPLOYER, None,
     "resource-group.delete"),
    ("GET", "/subscriptions/s1/operationresults/eyJqb2I?api-version=2024-03-01", p.DEPLOYER, None, "operation.poll"),
    ("GET", "/subscriptions/s1/providers/Microsoft.App/locations/swedencentral/operationStatuses/1", p.DEPLOYER, None,
     "operation.poll"),
    ("GET", "/subscriptions/s1/providers/Microsoft.Compute", p.DEPLOYER, None, "provider.get"),
    ("GET", "/subscriptions/s1/resourceGroups/haymaker-r-run/providers/Microsoft.App/jobs/j/executions", p.DEPLOYER,
     None, "job.executions"),
    ("POST", "/subscriptions/s1/resourceGroups/haymaker-r-run/providers/Microsoft.App/jobs/j/start", p.DEPLOYER, None,
     "job.start"),
    ("GET", "/subscriptions/s1/providers/Microsoft.KeyVault/deletedVaults", p.DEPLOYER, None, "deleted-vaults.list"),
    ("POST", "/subscriptions/s1/providers/Microsoft.KeyVault/locations/swedencentral/deletedVaults/kv-1/purge",
     p.DEPLOYER, None, "deleted-vault.purge"),
    ("GET", "/subscriptions/s1/providers/Microsoft.CognitiveServices/deletedAccounts", p.DEPLOYER, None,
     "deleted-accounts.list"),
    ("DELETE", "/subscriptions/s1/providers/Microsoft.CognitiveServices/locations/swedencentral/resourceGroups/rg/"
               "deletedAccounts/cv-1", p.DEPLOYER, None, "deleted-account.purge"),
    ("GET", "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments?$filter=assignedTo('o')", p.DEPLOYER,
     None, "role-assignments.list"),
    ("GET", "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/5d1b6c3e-0000-4000-8000-0000000c0570",
     p.DEPLOYER, None, "role-definition.get"),
    ("GET", "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1", p.DEPLOYER, None,
     "resource.get"),
    ("DELETE", "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip", p.DEPLOYER,
     None, "resource.delete"),
    ("GET", "/v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')?$select=id", p.DEPLOYER, None,
     "grants.graph-service-principal"),
    ("GET", "/v1.0/servicePrincipals/0a1b/appRoleAssignments", p.DEPLOYER, None, "grants.app-role-assignments"),
    ("GET", "/v1.0/applications?$filter=startswith(displayName,'haymaker-r-')", p.DEPLOYER, None, "applications.list"),
    ("GET", "/v1.0/applications/0a1b", p.DEPLOYER, None, "application.get"),
    ("DELETE", "/v1.0/applications/0a1b", p.DEPLOYER, None, "application.delete"),
    ("GET", "/v1.0/applications/0a1b/owners", p.DEPLOYER, None, "application.owners"),
    ("GET", "/v1.0/servicePrincipals/0a1b/owners", p.DEPLOYER, None, "service-principal.owners"),
    ("GET", "/v1.0/groups/0a1b/owners", p.GRAPH_IDENTITY, "group", "identity.group.owners"),
    ("GET", "/v1.0/applications/0a1b/owners", p.GRAPH_IDENTITY, "application", "identity.application.owners"),
    ("GET", "/v1.0/servicePrincipals/0a1b/owners", p.GRAPH_IDENTITY, "application",
     "identity.service-principal.owners"),
    ("GET", "/v1.0/servicePrincipals?$filter=startswith(displayName,'haymaker-r-')", p.DEPLOYER, None,
     "service-principals.list"),
    ("GET", "/v1.0/servicePrincipals/0a1b?$select=id", p.DEPLOYER, None, "service-principal.get"),
    ("DELETE", "/v1.0/servicePrincipals/0a1b", p.DEPLOYER, None, "service-principal.delete"),
    ("GET", "/v1.0/directory/deletedItems/0a1b", p.DEPLOYER, None, "deleted-item.get"),
    ("GET", "/subscriptions/s1/providers/Microsoft.KeyVault/locations/swedencentral/deletedVaults/kv-1", p.DEPLOYER,
     None, "deleted-vault.get"),
    ("GET", "/subscriptions/s1/providers/Microsoft.CognitiveServices/locations/swedencentral/resourceGroups/rg/"
            "deletedAccounts/cv-1", p.DEPLOYER, None, "deleted-account.get"),
    ("GET", "/v1.0/directory/deletedItems/microsoft.graph.application", p.DEPLOYER, None,
     "deleted-applications.list"),
    ("GET", "/v1.0/directory/deletedItems/microsoft.graph.servicePrincipal", p.DEPLOYER, None,
     "deleted-service-principals.list"),
    ("DELETE", "/v1.0/directory/deletedItems/0a1b", p.DEPLOYER, None, "deleted-item.purge"),
    ("GET", "/v1.0/groups?$filter=startswith(displayName,'haymaker-r-')", p.GRAPH_IDENTITY, None,
     "identity.groups.list"),
    ("GET", "/v1.0/groups/0a1b", p.GRAPH_IDENTITY, None, "identity.group.get"),
    ("DELETE", "/v1.0/groups/0a1b", p.GRAPH_IDENTITY, None, "identity.group.delete"),
    ("GET", "/v1.0/directory/deletedItems/microsoft.graph.group", p.GRAPH_IDENTITY, None,
     "identity.deleted-groups.list"),
    ("DELETE", "/v1.0/directory/deletedItems/0a1b", p.GRAPH_IDENTITY, "group", "identity.deleted-group.purge"),
    ("GET", "/v1.0/applications", p.GRAPH_IDENTITY, None, "identity.applications.list"),
    ("GET", "/v1.0/applications/0a1b?$select=id", p.GRAPH_IDENTITY, "application", "identity.application.get"),
    ("DELETE", "/v1.0/applications/0a1b", p.GRAPH_IDENTITY, None, "identity.application.delete"),
    ("GET", "/v1.0/servicePrincipals", p.GRAPH_IDENTITY, None, "identity.service-principals.list"),
    ("GET", "/v1.0/servicePrincipals/0a1b?$select=id", p.GRAPH_IDENTITY, "application",
     "identity.service-principal.get"),
    ("DELETE", "/v1.0/servicePrincipals/0a1b", p.GRAPH_IDENTITY, "application", "identity.service-principal.delete"),
    ("GET", "/v1.0/directory/deletedItems/microsoft.graph.application", p.GRAPH_IDENTITY, None,
     "identity.deleted-applications.list"),
    ("GET", "/v1.0/directory/deletedItems/microsoft.graph.servicePrincipal", p.GRAPH_IDENTITY, None,
     "identity.deleted-service-principals.list"),
    ("GET", "/v1.0/directory/deletedItems/0a1b?$select=id", p.GRAPH_IDENTITY, "application",
     "identity.deleted-item.get"),
    ("DELETE", "/v1.0/directory/deletedItems/0a1b", p.GRAPH_IDENTITY, "application", "identity.deleted-item.purge"),
    ("POST", "/Tables", p.DEPLOYER, None, "ledger.create-table"),
    ("POST", "/$batch", p.DEPLOYER, None, "ledger.upsert"),
    ("PUT", "/runs(PartitionKey='2026-11',RowKey='r')", p.DEPLOYER, None, "ledger.update"),
    ("MERGE", "/runs(PartitionKey='2026-11',RowKey='r')", p.DEPLOYER, None, "ledger.merge"),
    ("GET", "/runs()?$filter=PartitionKey eq '2026-11'", p.DEPLOYER, None, "ledger.query"),
    ("PUT", "/reports/20261121t0600z-7f3a/truth.jsonl", p.REAPER, None, "reports.upload"),
    ("POST", "/v1/subscriptions/s1/resourceGroups/haymaker-dev-platform/providers/Microsoft.OperationalInsights/"
             "workspaces/haymaker-dev-logs/query", p.REAPER, None, "logs.query"),
    ("POST", "/v1/workspaces/5f1b2c3d-0000-4000-8000-00000000a11a/query", p.REAPER, None, "logs.query"),
]


@pytest.mark.parametrize("method, path, principal, objects, key", REQUESTS)
def test_a_recorded_request_maps_to_its_row(method, path, principal, objects, key):
    op = p.match_request(method, path, principal=principal, objects=objects)
    assert op is not None and op.key == key


def test_every_row_with_an_http_shape_has_an_example_request_and_unknown_requests_match_none():
    rows = {op.key for op in (*p.ADAPTER_CALLS, *p.IDENTITY_CALLS, *p.DATA_CALLS) if op.path}
    assert {r[-1] for r in REQUESTS} == rows
    assert p.match_request("PATCH", "/v1.0/applications/0a1b") is None
    assert p.match_request("POST", "/v1.0/applications/0a1b/addPassword") is None
    assert p.match_request("DELETE", "/subscriptions/s1") is None


def test_role_patterns_follow_azure_wildcards():
    contributor = p.ROLE_DEFINITIONS["Contributor"]
    assert p.role_allows(contributor, "Microsoft.KeyVault/locations/deletedVaults/purge/action", p.ACTION)
    assert not p.role_allows(contributor, "Microsoft.Authorization/roleAssignments/write", p.ACTION)
    assert not p.role_allows(contributor, "microsoft.authorization/locks/delete", p.ACTION)
    assert not p.role_allows(contributor, "Microsoft.Storage/storageAccounts/tableServices/tables/entities/read",
                             p.DATA_ACTION)
    rbac = p.ROLE_DEFINITIONS["Role Based Access Control Administrator"]
    assert p.role_allows(rbac, "Microsoft.App/jobs/read", p.ACTION)
    assert not p.role_allows(rbac, "Microsoft.App/jobs/write", p.ACTION)


def test_group_deletion_is_a_role_a_person_scopes_to_haymakers_unit_never_a_grant(platform, every_scenario, catalog):
    """Deleting a group takes Group.ReadWrite.All (Group.Create cannot): no HayMaker identity holds it. The group
    identities delete as Groups Administrator of HayMaker's administrative unit, a one-time human step."""
    (row,) = [op for op in p.IDENTITY_CALLS if op.key == "identity.group.delete"]
    assert [n.permission for n in row.needs if n.kind == p.GRAPH] == []
    assert [(n.permission, n.kind) for n in row.needs if n.kind != p.FEDERATION] == [
        (p.GROUPS_ADMINISTRATOR, p.DIRECTORY_ROLE)]
    report = _check(platform, every_scenario, catalog)
    groups = {s.name for s in catalog.scenarios.values() if "group" in p.created_directory_objects(s)}
    assert groups and all(any(f"graph-identity:{g}:" in h and "Groups Administrator" in h for h in report.human)
                          for g in groups)
    assert not [m for m in report.missing if "group.delete" in m]
    for name in groups:  # creating a group in the unit takes AdministrativeUnit.Read.All beside Group.Create
        assert {"Group.Create", "AdministrativeUnit.Read.All"} <= set(catalog[name].graph_permissions)
