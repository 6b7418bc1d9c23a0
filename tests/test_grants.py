"""The Graph rights a person grants once: printed exactly (`haymaker platform grants`), verified read-only
with the real Graph client against the Graph stand-in (tests/fakes/graphgrants.py), and required before a
run borrows an identity."""

from __future__ import annotations

import json

import pytest

from components.roles import GRAPH_APP_ROLES
from haymaker import grants, trust
from haymaker.azure import Azure, AzureError
from haymaker.errors import Refused
from tests.fakes.cloud import DEPLOYER_CLIENT_ID, SUBSCRIPTION_ID

GROUPS = "identity-03-entra-users-groups"
PERMISSIONS = ["Group.Create", "Group.Read.All", "User.Read.All"]
OUTPUT = {GROUPS: {"permissions": PERMISSIONS, "identities": [
    {"id": f"/identities/{GROUPS}-{n}", "clientId": f"client-{n}", "principalId": f"principal-{n}"} for n in range(2)]}}


@pytest.fixture
def graph(fake_cloud):
    azure = Azure.connect(SUBSCRIPTION_ID, fake_cloud.endpoints(), env=fake_cloud.github_actions_env(),
                          connection_verify=fake_cloud.ca_file)
    return fake_cloud, azure.graph_reader()


def grant(cloud, principal, permissions, resource=None):
    cloud.graph.grant_app_roles(principal, [GRAPH_APP_ROLES[p] for p in permissions], resource)


def test_granted_identities_verify_and_each_missing_permission_is_named(graph):
    cloud, reader = graph
    grant(cloud, "principal-0", PERMISSIONS)
    grant(cloud, "principal-1", PERMISSIONS[:1])
    assert grants.verify_identities(reader, OUTPUT) == [f"{GROUPS} slot 1 lacks Group.Read.All, User.Read.All"]
    grant(cloud, "principal-1", PERMISSIONS[1:])
    assert grants.verify_identities(reader, OUTPUT) == []
    assert cloud.unlisted_requests() == []  # each read is a row of the permission table
    assert {s.method for s in cloud.graph.requests} == {"GET"}  # read-only


def test_an_app_role_of_another_resource_with_graphs_role_id_is_not_a_grant(graph):
    cloud, reader = graph
    grant(cloud, "principal-0", PERMISSIONS, resource="0f0f0f0f-0000-4000-8000-00000000f00d")
    assert grants.missing_app_roles(reader, "principal-0", PERMISSIONS) == PERMISSIONS


def test_a_caller_without_application_read_all_cannot_verify(graph):
    cloud, reader = graph
    cloud.login.roles[(DEPLOYER_CLIENT_ID, cloud.graph.base_url)] = ["Application.ReadWrite.OwnedBy"]
    with pytest.raises(AzureError, match="403 Authorization_RequestDenied"):
        grants.verify_identities(reader, OUTPUT)


def test_up_refuses_to_borrow_an_identity_whose_rights_were_not_granted(graph):
    cloud, reader = graph
    grant(cloud, "principal-0", PERMISSIONS)
    cloud.graph.add_identity("principal-1")
    grants.check_borrowed(reader, {GROUPS: 0}, OUTPUT)
    with pytest.raises(Refused) as refused:
        grants.check_borrowed(reader, {GROUPS: 1}, OUTPUT)
    assert str(refused.value) == (
        f"the Graph identities this run would borrow are not granted their Graph permissions ({GROUPS} slot 1 lacks "
        "Group.Create, Group.Read.All, User.Read.All): a Privileged Role Administrator runs what `haymaker platform "
        "grants` prints; nothing was created")


def test_printed_grants_name_every_slot_and_permission_of_the_table(catalog):
    table = trust.table("dev", catalog)
    text = grants.render(table, pool_size=2)
    for row in table.of_kind(trust.GRAPH_IDENTITY):
        for slot in range(2):
            assert f"--name haymaker-dev-graph-{row.scenario}-{slot} " in text
        for perm in row.graph:
            assert f'"appRoleId": "{GRAPH_APP_ROLES[perm]}"' in text
    posts = [line for line in text.splitlines() if "--method POST" in line and "appRoleAssignments" in line]
    assert len(posts) == 2 * sum(len(r.graph) for r in table.of_kind(trust.GRAPH_IDENTITY))
    units = [line for line in text.splitlines() if "roleManagement/directory/roleAssignments" in line]
    assert len(units) == 2 * sum(1 for r in table.of_kind(trust.GRAPH_IDENTITY) if r.directory_roles)
    assert all(trust.DIRECTORY_ROLE_TEMPLATES[trust.GROUPS_ADMINISTRATOR] in u for u in units)
    doc = grants.as_json(table, 2)
    assert [d["identity"] for d in doc] == [f"haymaker-dev-graph-{r.scenario}-{n}"
                                            for r in table.of_kind(trust.GRAPH_IDENTITY) for n in range(2)]
    json.dumps(doc)


def test_printed_grants_run_as_bash_and_post_what_they_say(catalog, tmp_path):
    """The printed script, run with a stand-in `az` that records its arguments: each body is the JSON it shows."""
    import os
    import subprocess

    table = trust.table("dev", catalog)
    if not table.of_kind(trust.GRAPH_IDENTITY):
        pytest.skip("the catalog has no Graph scenario")
    fake = tmp_path / "az"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "$AZ_LOG"; printf "\\1\\0" >> "$AZ_LOG"\n'
                    'case "$*" in *"sp show"*) echo graph-sp ;; *"identity show"*) echo principal-x ;; '
                    '*"--method GET"*) echo unit-1 ;; esac\n')
    fake.chmod(0o755)
    log = tmp_path / "az.log"
    done = subprocess.run(["bash", "-c", grants.render(table, 1)], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "AZ_LOG": str(log)})
    assert done.returncode == 0, done.stderr
    calls = [c.split("\0")[:-1] for c in log.read_text().split("\1\0") if c]
    bodies = [json.loads(c[c.index("--body") + 1]) for c in calls if "--body" in c]
    assert {b.get("principalId") for b in bodies} == {"principal-x"}
    assert {b["resourceId"] for b in bodies if "appRoleId" in b} == {"graph-sp"}
    assert {b["directoryScopeId"] for b in bodies if "directoryScopeId" in b} <= {"/administrativeUnits/unit-1"}


def test_a_permission_the_environment_does_not_allow_is_refused_before_anything_is_printed(catalog):
    table = trust.table("prod", catalog)
    held = sorted({p for r in table.of_kind(trust.GRAPH_IDENTITY) for p in r.graph})
    if not held:
        pytest.skip("the catalog has no Graph scenario")
    with pytest.raises(Refused, match=f"Graph app role {held[0]} is not in the allowlist"):
        grants.check_allowlist(table, {"graph-permissions-allowlist": {"allowedPermissions": held[1:]}})
    grants.check_allowlist(table, {})


def test_applications_verify_against_the_tables_subjects(graph, catalog):
    cloud, reader = graph
    table = trust.table("dev", catalog)
    repo = "acme/haymaker"
    for i in (x for x in table.federated() if x.kind == trust.APPLICATION):
        app = cloud.graph.add("applications", i.name)
        for gh_env, subject in zip(i.github_environments, i.subjects(repo)):
            cloud.graph.add_federated_credential(app["id"], f"github-{gh_env}", subject, trust.GITHUB_ISSUER)
    assert grants.verify_applications(reader, table, repo) == []
    deployer = next(o for o in cloud.graph.objects["applications"].values() if o["displayName"] == "haymaker-dev-deployer")
    cloud.graph.add_federated_credential(deployer["id"], "main", f"repo:{repo}:ref:refs/heads/main", trust.GITHUB_ISSUER)
    (problem,) = grants.verify_applications(reader, table, repo)
    assert problem.startswith("haymaker-dev-deployer: trusts ['repo:acme/haymaker:environment:dev', "
                              "'repo:acme/haymaker:ref:refs/heads/main'], not")
    cloud.graph.add("applications", "haymaker-dev-drift")  # a second one of that name
    assert "haymaker-dev-drift: 2 applications have that name, not one" in " ".join(
        grants.verify_applications(reader, table, repo))
