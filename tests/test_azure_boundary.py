"""The Azure and Graph adapters with the real client libraries, against local HTTPS stand-ins.

haymaker/azure.py is built exactly as `haymaker up/down/reap` build it (the deployer's GitHub OIDC
credential, the real azure-mgmt-* clients, azure-core's pipeline for Graph); only the endpoints
point at tests/fakes. The lifecycle around it is the real one; the Pulumi engine is a stand-in here
(tests/test_driver.py tests the driver against a stand-in `pulumi` executable).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from haymaker.azure import GRAPH_RETRIES, Azure, AzureError, Leftover
from haymaker.cloud import AzureAuthError, azure_credential
from haymaker.driver import RunStack, StackMissing
from haymaker.graphlease import LEASE_TAG
from haymaker.ledger import AgentRecord, LedgerUnreachable
from haymaker.lifecycle import Clock, Lifecycle
from haymaker.retry import Backoff
from tests.fakes.cloud import ADMIN_UNIT_ID, DEPLOYER_CLIENT_ID, SUBSCRIPTION_ID, TENANT_ID
from tests.fakes.login import aad_error, claims_of
from tests.fakes.server import Reply, error
from tests.test_ledger import dead_ledger
from tests.test_lifecycle import FakeLedger

RUN = "20261121t0600z-7f3a"
OTHER = "20261121t0600z-0b0b"
PREFIX = f"haymaker-{RUN}-"
TAGS = {"AzureHayMaker-managed": "true", "haymaker-run": RUN, "haymaker-env": "dev"}
ROOT = Path(__file__).resolve().parents[1]


IDENTITY = "9a1b2c3d-0000-4000-8000-0000000000g3"  # identity-03's borrowed platform identity, slot 0
IDENTITY_03_PERMISSIONS = ["Group.Create", "Group.Read.All", "User.Read.All"]
GROUPS = "identity-03-entra-users-groups"
APPS = "identity-01-service-principals"
APPS_IDENTITY = "9a1b2c3d-0000-4000-8000-0000000000a1"  # identity-01's borrowed platform identity
IDENTITY_01_PERMISSIONS = ["Application.ReadWrite.OwnedBy", "Application.Read.All"]
PLATFORM = "dev"


def connect(cloud, **options) -> Azure:
    """As `haymaker reap` connects in GitHub Actions: OIDC for the deployer and for borrowed identities."""
    return Azure.connect(SUBSCRIPTION_ID, cloud.endpoints(), env=cloud.github_actions_env(),
                         connection_verify=cloud.ca_file, **options)


class DestroyingDriver:
    """Stands in for the Pulumi engine: its destroy does what a real destroy does to the cloud. ``stacks``:
    the run stacks that exist (none: the run's stack is gone); ``platform``: the outputs of the platform
    stack ``dev``, or the error reading them raises."""

    def __init__(self, destroy=lambda: None, stacks=(), platform=None, run_outputs=None):
        self._destroy, self.calls = destroy, []
        self.stacks, self.platform, self.run_outputs = list(stacks), platform, run_outputs

    def destroy(self, name, remove=True):
        self.calls.append(("destroy", name))
        self._destroy()

    def remove(self, name, force=False):
        self.calls.append(("remove", name))

    def list_run_stacks(self):
        return list(self.stacks)

    def outputs(self, name):
        self.calls.append(("outputs", name))
        if name == f"run-{RUN}" and self.run_outputs is not None:
            return self.run_outputs
        if isinstance(self.platform, Exception):
            raise self.platform
        if name != PLATFORM or self.platform is None:
            raise StackMissing(f"cannot read the outputs of {name}: no such stack")
        return self.platform


def leased_run(lease: str, *pools) -> DestroyingDriver:
    """The run's stack with its lease tag, as `up` made it, and the platform's graphIdentities output:
    ``pools`` are (scenario, permissions, client id of each slot)."""
    return DestroyingDriver(stacks=[RunStack(f"run-{RUN}", {LEASE_TAG: lease, "haymaker:env": "dev"})], platform={"graphIdentities": {
        scenario: {"permissions": list(perms), "identities": [
            {"id": f"/identities/{scenario}-{n}", "clientId": c, "principalId": f"p-{c}"} for n, c in enumerate(clients)]}
        for scenario, perms, clients in pools}})


def lifecycle(cloud, driver=None, azure=None, agents=(), ledger=None):
    """The real lifecycle; its sleeps pass on the stand-ins' clock (recorded in ``sleeps``)."""
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        cloud.time.sleep(seconds)

    if ledger is None:
        ledger = FakeLedger()
        ledger.agents.extend(AgentRecord(RUN, scenario, "started", client_id=client) for scenario, client in agents)
    azure = azure or connect(cloud)
    azure.sleep = sleep
    life = Lifecycle(driver=driver or DestroyingDriver(), azure=azure, ledger=ledger,
                     clock=Clock(now=cloud.time.now, sleep=sleep, monotonic=cloud.time.monotonic),
                     backoff=Backoff(attempts=4, base_seconds=1), rng=random.Random(3), echo=lambda *_: None,
                     platform_stack=PLATFORM)
    return life, sleeps


def appid_of(seen) -> str:
    return claims_of(seen.headers["authorization"].split()[1])["appid"]


# --- symptom 1: every SDK symbol the code imports resolves -------------------------------------------

SDK_IMPORTS = r"""
import ast, importlib, json, sys
from pathlib import Path
root = Path(sys.argv[1])
found = set()
for path in [*root.glob("haymaker/**/*.py"), *root.glob("components/*.py"), *root.glob("stacks/*.py"),
             *root.glob("scripts/*.py")]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "azure":
            found.update((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update((alias.name, None) for alias in node.names if alias.name.split(".")[0] == "azure")
missing = []
for module, name in sorted(found, key=str):
    try:
        mod = importlib.import_module(module)
        if name is not None and not hasattr(mod, name):
            importlib.import_module(f"{module}.{name}")
    except ImportError as e:
        missing.append(f"{module}:{name}: {e}")
print(json.dumps({"imports": sorted(map(list, found), key=str), "missing": missing}))
"""


def test_every_azure_sdk_symbol_the_code_imports_resolves():
    """Every `from azure… import X` and `import azure…` in the project, lazy ones inside functions
    included, imported in a fresh interpreter."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", SDK_IMPORTS, str(ROOT)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert ["azure.mgmt.resource.subscriptions", "SubscriptionClient"] in result["imports"]  # lazy imports are seen
    assert result["missing"] == []


def test_the_subscription_check_reads_the_tenant_with_the_real_subscription_client(fake_cloud):
    assert connect(fake_cloud).subscription_tenant() == TENANT_ID
    (seen,) = fake_cloud.arm.seen("GET", f"/subscriptions/{SUBSCRIPTION_ID}$")
    assert seen.query["api-version"] and seen.headers["authorization"].startswith("Bearer ")
    wrong = Azure(credential=connect(fake_cloud).credential, subscription_id="99999999-0000-0000-0000-000000000000",
                  endpoints=fake_cloud.endpoints())
    with pytest.raises(AzureError, match="404 SubscriptionNotFound"):
        wrong.subscription_tenant()


# --- symptom 2: forced deletes of loose resources ------------------------------------------------------

def test_a_delete_is_started_and_then_followed_until_its_operation_ends(fake_cloud):
    """ARM accepts a delete (202 and a Location) and runs it: the resource reads `Deleting` until the operation
    ends, and the Location says how it goes. The adapter does not block on it: the teardown waits in its budget."""
    site = fake_cloud.arm.add_resource(f"{PREFIX}web", "Microsoft.Web/sites", "site", TAGS)
    azure = connect(fake_cloud)
    item = Leftover("resource", site.id, site.name, site.type, resource_group=f"{PREFIX}web")
    azure.delete(item)
    (delete,) = fake_cloud.arm.seen("DELETE", "/providers/Microsoft.Web/sites/")
    assert delete.query["api-version"] == "2024-04-01"  # not the newer preview the provider also lists
    assert (azure.exists(item), azure.operation(item)) == ("Deleting", ("InProgress", ""))
    fake_cloud.time.sleep(fake_cloud.arm.delete_seconds)
    assert (azure.exists(item), azure.operation(item)) == ("", ("Succeeded", ""))
    assert [s.status for s in fake_cloud.arm.seen("GET", "/operationresults/")] == [202, 200]


# --- symptom 3: 404 means gone; Resource Graph lags ---------------------------------------------------

def test_not_found_while_deleting_means_already_gone(fake_cloud):
    azure = connect(fake_cloud)
    group = Leftover("resource_group", f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{PREFIX}gone", f"{PREFIX}gone")
    site = Leftover("resource", f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/x/providers/Microsoft.Web/sites/s",
                    "s", "Microsoft.Web/sites")
    app = Leftover("application", "0f6a2a3e-0000-4000-8000-000000000001", f"{PREFIX}app")
    purged = Leftover("deleted_application", "0f6a2a3e-0000-4000-8000-000000000002", f"{PREFIX}app")
    for item in (group, site, app, purged):
        azure.delete(item)  # each answers 404: nothing to do
        assert not azure.exists(item)
    assert [s.status for s in fake_cloud.arm.seen("DELETE")] == [404, 404]
    assert [s.status for s in fake_cloud.graph.seen("DELETE")] == [404, 404]


def test_a_clean_teardown_is_verified_while_resource_graph_still_lists_what_the_destroy_deleted(fake_cloud):
    fake_cloud.arm.index_lag = None  # the index never catches up during this test
    fake_cloud.arm.add_group(f"{PREFIX}compute-01", TAGS)
    fake_cloud.arm.add_resource(f"{PREFIX}compute-01", "Microsoft.Network/virtualNetworks", "vnet", TAGS)
    app = fake_cloud.graph.add("applications", f"{PREFIX}compute-01")

    def destroy():
        fake_cloud.arm.remove_group(f"{PREFIX}compute-01")
        fake_cloud.graph.remove("applications", app["id"])

    life, _ = lifecycle(fake_cloud, DestroyingDriver(destroy), agents=[("compute-01", "agent-client")])
    result = life.teardown(RUN)
    assert fake_cloud.arm.seen("POST", "ResourceGraph")[-1].status == 200
    assert len(connect(fake_cloud).query(f"resources | union resourcecontainers | where tags['haymaker-run'] =~ '{RUN}' "
                                         "| project id, name, type, resourceGroup")) == 2  # the index still lists both
    assert (result.outcome, result.leftovers_found, result.leftovers_remaining) == ("verified", [], [])
    assert [x.kind for x in result.purged] == ["deleted_application"]  # the destroy's soft-deleted app, purged
    assert fake_cloud.graph.deleted == {}
    assert life.ledger.updates[-1][1]["status"] == "verified"


# --- symptom 4: a token failure is a clear, recorded error --------------------------------------------

def test_a_graph_token_failure_fails_the_teardown_with_a_clear_error_and_records_it(fake_cloud):
    fake_cloud.login.refuse[fake_cloud.graph.base_url] = aad_error(
        700024, "invalid_client", "Client assertion is not within its valid time range.")
    fake_cloud.arm.add_group(f"{PREFIX}a", TAGS)
    life, _ = lifecycle(fake_cloud)
    result = life.teardown(RUN)  # a result, not a traceback
    assert result.outcome == "failed"
    assert result.error.startswith("cannot get a token for Microsoft Graph: ") and "AADSTS700024" in result.error
    assert "id-token: write" in result.error  # what to check, in GitHub Actions
    assert life.ledger.updates[-1][1]["status"] == "teardown_failed"
    assert [e[1] for e in life.ledger.events] == ["teardown"]


def test_a_refused_arm_token_names_arm_and_the_federated_credential(fake_cloud):
    fake_cloud.login.federated.clear()  # the deployer's federated credential no longer trusts this job
    with pytest.raises(AzureAuthError, match="cannot get a token for Azure Resource Manager: .*AADSTS70021"):
        connect(fake_cloud).subscription_tenant()


def test_in_github_actions_every_new_token_uses_a_fresh_oidc_token(fake_cloud):
    """GitHub's OIDC token expires (about 10 minutes); a long reap needs tokens after that."""
    fake_cloud.github_oidc.lifetime = 1
    azure = connect(fake_cloud)
    azure.subscription_tenant()  # an ARM token, from the first OIDC token
    time.sleep(fake_cloud.github_oidc.issued[0]["exp"] - time.time() + 0.05)  # that OIDC token has expired now
    assert azure.entra_objects(RUN) == []  # a Graph token, from a new OIDC token
    assert len(fake_cloud.github_oidc.seen("GET")) == 2
    assert [c["aud"] for c in fake_cloud.login.issued] == [fake_cloud.arm.base_url, fake_cloud.graph.base_url]


# --- symptom 5: consistent Graph queries ----------------------------------------------------------------

def test_graph_listings_are_default_queries_and_a_delete_is_seen_once_the_directory_replicated(fake_cloud):
    app = fake_cloud.graph.add("applications", f"{PREFIX}a")
    azure = connect(fake_cloud)
    assert azure.delete(Leftover("application", app["id"], app["displayName"])) is True
    assert [x.id for x in azure.entra_objects(RUN)] == [app["id"]]  # Entra replicates: a read may lag a write
    assert azure.delete(Leftover("application", app["id"], app["displayName"])) is False  # gone already
    fake_cloud.time.sleep(fake_cloud.graph.read_lag)
    assert azure.entra_objects(RUN) == []
    for seen in fake_cloud.graph.seen("GET", "/applications$"):
        assert "consistencylevel" not in seen.headers and "$count" not in seen.query
        assert seen.query["$filter"] == f"startswith(displayName,'{PREFIX}')"


# --- symptom 7 and the whole teardown --------------------------------------------------------------------

VM, VAULTS, LANGUAGE = "compute-01-linux-vm-web-server", "security-01-key-vault-secrets", "ai-ml-02-text-analytics"
# The run's agents as the ledger records them: (scenario, client id). Names need not be the catalog's.
EVERY_KIND_AGENTS = [(GROUPS, IDENTITY), (VM, "agent-app-client-id"), (VAULTS, "agent-2"), (LANGUAGE, "agent-3")]


def populate_every_kind(cloud, run=RUN, identity=IDENTITY):
    prefix, tags = f"haymaker-{run}-", {**TAGS, "haymaker-run": run}
    cloud.arm.add_group(f"{prefix}{GROUPS}", tags)
    cloud.arm.add_resource(f"{prefix}{GROUPS}", "Microsoft.Storage/storageAccounts", "stdirhyg1", tags)  # goes with it
    cloud.arm.add_resource("shared-rg", "Microsoft.Web/sites", f"{prefix}site", tags)  # outside its groups: not its
    app = cloud.graph.add("applications", f"{prefix}{VM}")  # an agent's own application (the deployer's)
    cloud.graph.add("servicePrincipals", f"{prefix}{VM}", appId=app["appId"])
    cloud.graph.add("servicePrincipals", f"{prefix}{VAULTS}")  # an agent's service principal without its application
    cloud.graph.add("groups", f"{prefix}lift-operations", owner=identity, unit=ADMIN_UNIT_ID)  # made by identity-03's agent
    cloud.graph.add_deleted("groups", f"{prefix}rental-desk", owner=identity)
    cloud.graph.add_deleted("applications", f"{prefix}old-app")
    cloud.arm.add_deleted("vault", f"kv{run[-4:]}", f"{prefix}{VAULTS}")
    cloud.arm.add_deleted("cognitive", "lang1", f"{prefix}{LANGUAGE}")


def test_a_teardown_with_leftovers_of_every_kind_ends_forced_with_nothing_left(fake_cloud):
    fake_cloud.borrowable_identity(IDENTITY, IDENTITY_03_PERMISSIONS)
    populate_every_kind(fake_cloud)
    populate_every_kind(fake_cloud, OTHER, identity="another-runs-identity")  # another live run: not ours
    fake_cloud.arm.page_size = fake_cloud.graph.page_size = 1  # every listing pages
    fake_cloud.arm.fail("DELETE", "/resourcegroups/[^/]+$", error(409, "Conflict", "Operation on this or a dependent "
                        "resource is in progress: AnotherOperationInProgress"))
    fake_cloud.graph.fail("DELETE", "/groups/", Reply(429, {"error": {"code": "TooManyRequests", "message": "slow down"}},
                                                      {"Retry-After": "1"}))
    life, sleeps = lifecycle(fake_cloud, agents=EVERY_KIND_AGENTS)
    result = life.teardown(RUN)
    assert result.outcome == "forced", result.error
    assert result.kinds == {
        "application": {"found": 1, "remaining": 0, "purged": 0},
        "deleted_application": {"found": 0, "remaining": 0, "purged": 2},
        "deleted_cognitive_account": {"found": 0, "remaining": 0, "purged": 1},
        "deleted_group": {"found": 0, "remaining": 0, "purged": 0, "retained": 2},
        "deleted_key_vault": {"found": 0, "remaining": 0, "purged": 1},
        "deleted_service_principal": {"found": 0, "remaining": 0, "purged": 2},
        "group": {"found": 1, "remaining": 0, "purged": 0},
        "resource": {"found": 0, "remaining": 0, "purged": 0, "suspicious": 1},
        "resource_group": {"found": 1, "remaining": 0, "purged": 0},
        "service_principal": {"found": 1, "remaining": 0, "purged": 0},  # the agent's went with its application
    }
    (odd,) = result.suspicious
    assert (odd.name, odd.reason) == (f"{PREFIX}site", f"tagged with run {RUN} but outside its groups")
    assert not [n for n in fake_cloud.graph.live_names() if n.startswith(PREFIX)]
    # Only the deleted groups stay: no application permission may purge a group.
    assert sorted(o["displayName"] for o in fake_cloud.graph.deleted.values() if o["displayName"].startswith(PREFIX)) \
        == [f"{PREFIX}lift-operations", f"{PREFIX}rental-desk"]
    assert not [g for g in fake_cloud.arm.groups if RUN in g] and not [d for d in fake_cloud.arm.deleted if RUN in d.resource_group]
    assert fake_cloud.arm.exists(f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/shared-rg/providers/Microsoft.Web/"
                                 f"sites/{PREFIX}site")  # tagged, but not provably the run's: left alone
    assert len([g for g in fake_cloud.arm.groups if OTHER in g]) == 1  # the other run is untouched
    assert len(fake_cloud.graph.live_names()) == 4
    assert [s.status for s in fake_cloud.arm.seen("DELETE", "/resourcegroups/[^/]+$")] == [409, 202]  # retried by us
    assert len(sleeps) >= 1
    assert [s.status for s in fake_cloud.graph.seen("DELETE", "/groups/")] == [429, 204]  # retried by the pipeline
    # The group went as the identity that owns it; the deployer, which holds no group permission, never asked.
    (deleted,) = [s for s in fake_cloud.graph.seen("DELETE", "/groups/") if s.status == 204]
    assert claims_of(deleted.headers["authorization"].split()[1])["appid"] == IDENTITY
    assert all(claims_of(s.headers["authorization"].split()[1])["appid"] == IDENTITY
               for s in fake_cloud.graph.seen(None, "/groups"))
    assert fake_cloud.arm.requests and all(s.status < 500 for s in fake_cloud.arm.requests + fake_cloud.graph.requests)
    unlisted = fake_cloud.unlisted_requests()
    assert unlisted == [], "\n".join(unlisted)  # every call is in the permission table, for the identity that made it


def test_what_an_application_scenarios_identity_created_goes_as_that_identity_and_nothing_is_left(fake_cloud):
    """identity-01's agent creates applications and service principals as its borrowed identity (found from
    the stack's lease and the platform's output): teardown reads, deletes and purges them as it."""
    fake_cloud.borrowable_identity(APPS_IDENTITY, IDENTITY_01_PERMISSIONS)
    agent_app = fake_cloud.graph.add("applications", f"{PREFIX}compute-01")  # the deployer's: an agent's own
    app = fake_cloud.graph.add("applications", f"{PREFIX}billing-api", owner=APPS_IDENTITY)
    fake_cloud.graph.add("servicePrincipals", f"{PREFIX}billing-api", owner=APPS_IDENTITY, appId=app["appId"])
    fake_cloud.graph.add("servicePrincipals", f"{PREFIX}billing-worker", owner=APPS_IDENTITY)
    fake_cloud.graph.add_deleted("applications", f"{PREFIX}old-api", owner=APPS_IDENTITY)
    fake_cloud.graph.add("applications", f"haymaker-{OTHER}-billing-api", owner=APPS_IDENTITY)  # another run's
    owner = {o["id"]: o["_owners"][0] for objs in fake_cloud.graph.objects.values() for o in objs.values()}
    owner.update({o["id"]: o["_owners"][0] for o in fake_cloud.graph.deleted.values()})
    fake_cloud.graph.page_size = 1
    driver = leased_run(f"{APPS}=1", (APPS, IDENTITY_01_PERMISSIONS, ["another-runs-identity", APPS_IDENTITY]))
    life, _ = lifecycle(fake_cloud, driver, agents=[("compute-01", "agent-client"), (APPS, "agent-apps")])
    result = life.teardown(RUN)
    assert (result.outcome, result.error, result.suspicious) == ("forced", "", [])
    assert result.kinds == {
        "application": {"found": 2, "remaining": 0, "purged": 0},
        "deleted_application": {"found": 0, "remaining": 0, "purged": 3},
        "deleted_service_principal": {"found": 0, "remaining": 0, "purged": 2},
        "service_principal": {"found": 1, "remaining": 0, "purged": 0},  # billing-api's went with its application
    }
    assert fake_cloud.graph.live_names() == [f"haymaker-{OTHER}-billing-api"]
    assert not [o for o in fake_cloud.graph.deleted.values() if o["displayName"].startswith(PREFIX)]
    # Each object went as its owner: the agent's application as the deployer, the rest as the identity.
    deletes = [s for s in fake_cloud.graph.seen("DELETE") if s.status == 204]
    assert {s.path.rsplit("/", 1)[-1]: appid_of(s) for s in deletes if "/applications/" in s.path} == {
        agent_app["id"]: DEPLOYER_CLIENT_ID, app["id"]: APPS_IDENTITY}
    assert all(appid_of(s) == owner.get(s.path.rsplit("/", 1)[-1], appid_of(s)) for s in deletes)
    assert ("remove", f"run-{RUN}") in driver.calls
    assert all(s.status < 500 for s in fake_cloud.graph.requests)
    unlisted = fake_cloud.unlisted_requests()
    assert unlisted == [], "\n".join(unlisted)  # every call is in the permission table, for the identity that made it


def test_with_the_ledger_unreachable_the_stacks_lease_names_the_identity_whose_group_is_left(fake_cloud, tmp_path):
    """The ledger's agents cannot be read; the run stack's lease tag and the platform's graphIdentities
    output still say which identity the Graph agent borrowed, so its group is found and deleted as it."""
    ledger = dead_ledger(tmp_path)
    with pytest.raises(LedgerUnreachable):
        ledger.list_agents(RUN)
    fake_cloud.borrowable_identity(IDENTITY, IDENTITY_03_PERMISSIONS)
    fake_cloud.graph.add("groups", f"{PREFIX}lift-operations", owner=IDENTITY, unit=ADMIN_UNIT_ID)
    driver = leased_run(f"{GROUPS}=1", (GROUPS, IDENTITY_03_PERMISSIONS, ["another-runs-identity", IDENTITY]),
                        (APPS, IDENTITY_01_PERMISSIONS, [APPS_IDENTITY]))
    life, _ = lifecycle(fake_cloud, driver, ledger=ledger)
    result = life.teardown(RUN)
    assert (result.outcome, result.error) == ("forced", "")
    assert result.kinds["group"] == {"found": 1, "remaining": 0, "purged": 0}
    assert not [n for n in fake_cloud.graph.live_names() if n.startswith(PREFIX)]
    assert [appid_of(s) for s in fake_cloud.graph.seen("DELETE", "/groups/")] == [IDENTITY]
    assert ("outputs", PLATFORM) in driver.calls and ("remove", f"run-{RUN}") in driver.calls
    assert '"forced"' in ledger.spool_path.read_text()  # the outcome waits in the spool for the ledger
    assert fake_cloud.unlisted_requests() == []


@pytest.mark.parametrize("make_driver, says", [
    (lambda: DestroyingDriver(stacks=[RunStack(f"run-{RUN}", {LEASE_TAG: f"{GROUPS}=0", "haymaker:env": "dev"})]),
     "cannot read the graphIdentities output of platform stack dev: cannot read the outputs of dev: no such stack"),
    (lambda: leased_run(f"{GROUPS}=1", (GROUPS, IDENTITY_03_PERMISSIONS, [IDENTITY])),
     f"cannot resolve the lease {LEASE_TAG}={GROUPS}=1: the platform's graphIdentities output has no identity for "
     f"the lease {GROUPS}=1"),
    (DestroyingDriver, f"the Graph identities run-{RUN} borrowed are unknown (its stack is gone and the ledger's "
                       "agents cannot be read)"),
], ids=["platform-unreadable", "slot-not-in-platform", "stack-gone"])
def test_a_teardown_that_cannot_tell_which_identities_the_run_borrowed_fails_and_keeps_the_stack(
        fake_cloud, tmp_path, make_driver, says):
    driver = make_driver()
    from scenarios.catalog import load_catalog

    fake_cloud.borrowable_identity(IDENTITY, IDENTITY_03_PERMISSIONS)
    fake_cloud.graph.add("groups", f"{PREFIX}lift-operations", owner=IDENTITY, unit=ADMIN_UNIT_ID)
    # Neither the stack's outputs nor the ledger name the run's scenarios: every scenario of the catalog stands in.
    fake_cloud.arm.add_group(f"{PREFIX}{sorted(load_catalog().scenarios)[0]}", TAGS)
    life, _ = lifecycle(fake_cloud, driver, ledger=dead_ledger(tmp_path))
    result = life.teardown(RUN)
    assert result.outcome == "failed" and says in result.error, result.error
    assert "were not looked for" in result.error
    # What the deployer owns still goes; the group, unseen, is not claimed gone, and the lease holds.
    assert [x.kind for x in result.leftovers_found] == ["resource_group"] and result.leftovers_remaining == []
    assert not fake_cloud.arm.groups
    assert fake_cloud.graph.live_names() == [f"{PREFIX}lift-operations"]
    assert ("destroy", f"run-{RUN}") in driver.calls and ("remove", f"run-{RUN}") not in driver.calls
    assert "teardown_failed" in life.ledger.spool_path.read_text()


def arm_throttled(operation: str) -> Reply:
    """ARM's answer when a subscription's request bucket is empty: 429 and Retry-After in whole seconds."""
    return error(429, "SubscriptionRequestsThrottled", f"Number of '{operation}' requests for subscription "
                 f"'{SUBSCRIPTION_ID}' actor '{DEPLOYER_CLIENT_ID}' exceeded. Please try again after '1' seconds.",
                 {"Retry-After": "1"})


def test_arm_throttling_is_waited_out_by_the_sdk_pipeline_and_the_teardown_still_ends_forced(fake_cloud):
    fake_cloud.arm.add_group(f"{PREFIX}{VM}", TAGS)
    fake_cloud.arm.add_deleted("vault", f"kv{RUN[-4:]}", f"{PREFIX}{VAULTS}")
    fake_cloud.arm.fail("GET", "/resourcegroups$", arm_throttled("read"))  # the listing of the run's groups
    fake_cloud.arm.fail("DELETE", "/resourcegroups/[^/]+$", arm_throttled("delete"))
    fake_cloud.arm.fail("POST", "/deletedVaults/[^/]+/purge$", arm_throttled("write"))
    life, sleeps = lifecycle(fake_cloud, agents=[(VM, "agent-1"), (VAULTS, "agent-2")])
    said = []
    life.echo = said.append
    result = life.teardown(RUN)
    assert (result.outcome, result.error) == ("forced", "")
    assert result.kinds == {"deleted_key_vault": {"found": 0, "remaining": 0, "purged": 1},
                            "resource_group": {"found": 1, "remaining": 0, "purged": 0}}
    assert not fake_cloud.arm.groups and not fake_cloud.arm.deleted
    assert [s.status for s in fake_cloud.arm.seen("GET", "/resourcegroups$")][:2] == [429, 200]
    assert fake_cloud.arm.seen("GET", f"/resourcegroups/{PREFIX}{VM}$")  # read by its exact name
    assert [s.status for s in fake_cloud.arm.seen("DELETE", "/resourcegroups/[^/]+$")] == [429, 202]
    assert [s.status for s in fake_cloud.arm.seen("POST", "/purge$")] == [429, 202]
    assert not [m for m in said if "transient error" in m]  # the SDK's pipeline retried after Retry-After
    assert fake_cloud.unlisted_requests() == []


def test_the_deployer_alone_can_neither_see_nor_delete_a_graph_agents_group(fake_cloud):
    group = fake_cloud.graph.add("groups", f"{PREFIX}lift-operations", owner=IDENTITY, unit=ADMIN_UNIT_ID)
    azure = connect(fake_cloud)
    with pytest.raises(AzureError, match="403 Authorization_RequestDenied"):
        azure.entra_objects(RUN, kinds=("group",))
    with pytest.raises(AzureError, match="403 Authorization_RequestDenied"):
        azure.delete(Leftover("group", group["id"], group["displayName"]))


def test_what_cannot_be_deleted_is_reported_remaining_and_failed(fake_cloud):
    fake_cloud.graph.add("applications", f"{PREFIX}{VM}")
    fake_cloud.graph.fail("DELETE", "/applications/", Reply(403, {"error": {"code": "Authorization_RequestDenied",
                          "message": "Insufficient privileges to complete the operation."}}), times=10)
    life, _ = lifecycle(fake_cloud, agents=[(VM, "agent-1")])
    result = life.teardown(RUN)
    assert result.outcome == "failed"
    assert [(x.kind, x.name) for x in result.leftovers_remaining] == [("application", f"{PREFIX}{VM}")]
    assert len(fake_cloud.graph.seen("DELETE", "/applications/")) == 1  # a refusal is not retried
    assert ("remove", f"run-{RUN}") not in life.driver.calls  # the stack stays for the next reap


# --- jobs -------------------------------------------------------------------------------------------

def test_job_executions_and_a_late_start(fake_cloud):
    rg = f"{PREFIX}run"
    fake_cloud.arm.add_job(rg, "hm-a", ["2026-11-21T06:15:00Z"])
    fake_cloud.arm.add_job(rg, "hm-b")
    azure = connect(fake_cloud)
    assert [t.isoformat() for t in azure.job_executions(rg, "hm-a")] == ["2026-11-21T06:15:00+00:00"]
    assert azure.job_executions(rg, "hm-b") == []
    azure.start_job(rg, "hm-b")
    assert len(azure.job_executions(rg, "hm-b")) == 1
    with pytest.raises(AzureError, match="404 ResourceNotFound"):
        azure.start_job(rg, "hm-missing")


def test_resource_graph_and_arm_listings_follow_their_pages(fake_cloud):
    from haymaker.ownership import RunProof, ids_of

    for i in range(3):
        fake_cloud.arm.add_group(f"{PREFIX}g{i}", TAGS)
        fake_cloud.arm.add_resource("shared-rg", "Microsoft.Web/sites", f"{PREFIX}s{i}", TAGS)
    fake_cloud.arm.page_size = 2
    proof = RunProof(RUN, "dev", frozenset({"g0", "g1"}), ids_of(DEPLOYER_CLIENT_ID))
    found = connect(fake_cloud).survey(proof)
    assert sorted(x.name for x in found.targets) == [f"{PREFIX}g0", f"{PREFIX}g1"]
    assert sorted(x.name for x in found.suspicious) == [f"{PREFIX}g2", *(f"{PREFIX}s{i}" for i in range(3))]
    graph_calls = fake_cloud.arm.seen("POST", "ResourceGraph")
    assert len(graph_calls) == 3  # 6 rows, 2 a page
    assert len(fake_cloud.arm.seen("GET", "/resourcegroups$")) == 2


# --- defect 1: a lasting error while confirming a delete is a recorded failure, never a traceback ---------

DENIED = Reply(403, {"error": {"code": "Authorization_RequestDenied",
                               "message": "Insufficient privileges to complete the operation."}})
EXPIRED = aad_error(700024, "invalid_client", "Client assertion is not within its valid time range.")


@pytest.mark.parametrize("after, cause, says", [
    ("DELETE /applications/", "token", "AADSTS700024"),
    ("DELETE /applications/", "forbidden", "403 Authorization_RequestDenied"),
    ("DELETE /applications/", "server", "Graph 503"),
    ("DELETE /directory/deletedItems/", "token", "AADSTS700024"),  # the purge's re-read
], ids=["token-expires", "forbidden", "lasting-5xx", "purge-token-expires"])
def test_a_lasting_error_while_confirming_a_delete_ends_the_teardown_failed_and_recorded(fake_cloud, after, cause, says):
    fake_cloud.login.token_lifetime = 1  # tokens expire during the teardown, as in a long reap
    fake_cloud.graph.add("applications", f"{PREFIX}{VM}")
    fake_cloud.graph.add_deleted("applications", f"{PREFIX}old-app")
    method, path = after.split(" ")

    def expire():  # from here on the cached token has expired and Entra refuses a new one
        fake_cloud.login.refuse[fake_cloud.graph.base_url] = EXPIRED
        time.sleep(1.1)

    refuse = {"token": expire,
              "forbidden": lambda: fake_cloud.graph.fail("GET", "/applications/", DENIED, times=100),
              "server": lambda: fake_cloud.graph.fail("GET", "/applications/", error(503, "ServiceUnavailable", "busy"),
                                                      times=100)}[cause]
    fake_cloud.graph.when(method, path, refuse)
    life, _ = lifecycle(fake_cloud, agents=[(VM, "agent-1")], azure=connect(fake_cloud, retry_total=0))
    result = life.teardown(RUN)  # a result, not a traceback
    assert result.outcome == "failed" and says in result.error, result.error
    assert life.ledger.updates[-1][1]["status"] == "teardown_failed"
    assert [e[1] for e in life.ledger.events] == ["teardown"]
    assert ("remove", f"run-{RUN}") not in life.driver.calls  # the stack stays for the next reap


# --- defect 3: long deletes are waited for within the budget, then reported in progress and resumed ----------

VPN = "networking-02-vpn-gateway"


def test_a_delete_that_outlasts_the_budget_ends_the_teardown_failed_with_what_is_in_progress_and_is_resumed(fake_cloud):
    """A VPN gateway's group takes 45 minutes to delete: the teardown waits for it while its 20 minutes last,
    then ends `failed` naming it; the next reap finds it still `Deleting`, does not delete it again, and waits."""
    group = f"{PREFIX}{VPN}"
    fake_cloud.arm.add_group(group, TAGS)
    fake_cloud.arm.delete_plans[group.lower()] = ("Succeeded", 45 * 60, None)
    life, sleeps = lifecycle(fake_cloud, agents=[(VPN, "agent-1")])
    result = life.teardown(RUN)
    assert result.outcome == "failed", result
    assert result.error == ("still being deleted when the teardown stopped waiting within its budget "
                            f"(HAYMAKER_TEARDOWN_BUDGET_MINUTES; the next reap resumes): resource_group {group}")
    assert sum(sleeps) <= life.budget.total_seconds()  # it ended within its budget, waiting on no one else's clock
    assert life.ledger.updates[-1][1]["status"] == "teardown_failed"
    assert ("remove", f"run-{RUN}") not in life.driver.calls  # the stack stays for the next reap
    fake_cloud.time.sleep(20 * 60)  # the next reap, while the delete still runs (about 35 of its 45 minutes)
    again, _ = lifecycle(fake_cloud, agents=[(VPN, "agent-1")])
    result = again.teardown(RUN)
    assert (result.outcome, result.error) == ("forced", ""), result
    assert [x.state for x in result.leftovers_found] == ["Deleting"]
    assert len(fake_cloud.arm.seen("DELETE", f"/resourcegroups/{group}$")) == 1  # waited for, not deleted twice
    assert group.lower() not in fake_cloud.arm.groups


@pytest.mark.parametrize("plan, says", [
    (("Failed", 60, error(409, "ResourceGroupDeletionBlocked", "Deletion of resource group was blocked: a nested "
                                                                   "resource could not be deleted.")),
     "the delete of resource_group {group} failed: 409 ResourceGroupDeletionBlocked: Deletion of resource group was "
     "blocked: a nested resource could not be deleted."),
    ("locked", "resource_group {group}: cannot delete resource group {group}: 409 ScopeLocked"),
], ids=["operation-failed", "scope-locked"])
def test_a_delete_that_fails_or_is_refused_by_a_lock_ends_the_teardown_failed_with_arms_words(fake_cloud, plan, says):
    group = f"{PREFIX}{VPN}"
    fake_cloud.arm.add_group(group, TAGS)
    if plan == "locked":
        fake_cloud.arm.locks.add(group.lower())
    else:
        fake_cloud.arm.delete_plans[group.lower()] = plan
    life, _ = lifecycle(fake_cloud, agents=[(VPN, "agent-1")])
    result = life.teardown(RUN)
    assert result.outcome == "failed" and says.format(group=group) in result.error, result.error
    assert group.lower() in fake_cloud.arm.groups
    assert fake_cloud.arm.groups[group.lower()].provisioning_state == "Succeeded"


# --- defects 6 and 7: throttling and rollouts do not stop the look for leftovers ---------------------------

def test_one_resource_graph_429_is_waited_out_by_its_quota_headers_and_the_teardown_goes_on(fake_cloud):
    """Resource Graph throttles per user with x-ms-user-quota-remaining / -resets-after and no Retry-After (the
    SDK does not retry a POST): the teardown waits for the window to reset and carries on."""
    fake_cloud.arm.quota = 1  # one query per 5-second window: the second look is throttled
    fake_cloud.graph.add("applications", f"{PREFIX}{VM}")  # found, deleted at once: a second look follows
    life, sleeps = lifecycle(fake_cloud, agents=[(VM, "agent-1")])
    result = life.teardown(RUN)
    assert (result.outcome, result.error) == ("forced", ""), result
    statuses = [s.status for s in fake_cloud.arm.seen("POST", "ResourceGraph")]
    assert 429 in statuses and statuses[-1] == 200
    assert fake_cloud.unlisted_requests() == []


def test_a_resource_graph_quota_that_stays_spent_ends_the_teardown_failed_and_says_it_is_throttling(fake_cloud):
    fake_cloud.arm.quota = 0
    life, _ = lifecycle(fake_cloud, agents=[(VM, "agent-1")])
    result = life.teardown(RUN)
    assert result.outcome == "failed"
    assert "Resource Graph's per-user query quota stayed spent" in result.error, result.error


def test_an_api_version_not_yet_rolled_out_to_a_region_does_not_stop_the_look_for_leftovers(fake_cloud):
    """Providers_Get lists 2024-04-01 for sites, but northeurope still serves 2023-12-01 only: the read of a
    look-alike there is retried with a version the region serves, and the directory sweep and purges go on."""
    fake_cloud.arm.rollout[("microsoft.web", "sites")] = {"northeurope": ["2023-12-01"]}
    fake_cloud.arm.add_resource("shared-rg", "Microsoft.Web/sites", f"{PREFIX}site", TAGS, location="northeurope")
    fake_cloud.graph.add("applications", f"{PREFIX}{VM}")
    fake_cloud.arm.add_deleted("vault", "kvrollout", f"{PREFIX}{VAULTS}")
    life, _ = lifecycle(fake_cloud, agents=[(VM, "agent-1"), (VAULTS, "agent-2")])
    result = life.teardown(RUN)
    assert (result.outcome, result.error) == ("forced", ""), result
    assert [x.name for x in result.suspicious] == [f"{PREFIX}site"]
    assert fake_cloud.graph.live_names() == [] and fake_cloud.arm.deleted == []
    versions = [s.query["api-version"] for s in fake_cloud.arm.seen("GET", "/providers/Microsoft.Web/sites/")]
    assert versions[:2] == ["2024-04-01", "2023-12-01"]  # the newest the provider lists, then the region's
    assert [s.status for s in fake_cloud.arm.seen("GET", "/providers/Microsoft.Web/sites/")][:2] == [400, 200]


def test_graph_throttling_is_waited_out_within_a_bound_and_named_when_it_lasts(fake_cloud):
    throttled = Reply(429, {"error": {"code": "TooManyRequests", "message": "Too many requests."}}, {"Retry-After": "1"})
    fake_cloud.graph.add("applications", f"{PREFIX}{VM}")
    fake_cloud.graph.fail("GET", "/applications$", throttled, times=2)  # waited out
    life, _ = lifecycle(fake_cloud, agents=[(VM, "agent-1")])
    assert life.teardown(RUN).outcome == "forced"
    fake_cloud.graph.reset()
    fake_cloud.graph.add("applications", f"{PREFIX}{VM}")
    fake_cloud.graph.fail("GET", "/applications$", throttled, times=100)  # lasts
    life, _ = lifecycle(fake_cloud, agents=[(VM, "agent-1")])
    result = life.teardown(RUN)
    assert result.outcome == "failed" and "throttled by Microsoft Graph" in result.error, result.error
    assert len(fake_cloud.graph.seen("GET", "/applications$")) == GRAPH_RETRIES  # bounded: then it stops


# --- defect 4: what shows up in deleted items late is still purged, or recorded for the next reap -------------

def test_objects_that_show_up_late_in_deleted_items_are_still_purged(fake_cloud):
    """The destroy deleted the agent's application; the teardown deletes a service principal left behind. Entra
    shows both in deleted items only half a minute later: the purge waits for them (within the budget)."""
    agent = fake_cloud.graph.add("applications", f"{PREFIX}{VM}")
    fake_cloud.graph.add("servicePrincipals", f"{PREFIX}{VAULTS}")  # left behind: deleted by the teardown
    fake_cloud.graph.deleted_items_lag = 30.0
    driver = DestroyingDriver(lambda: fake_cloud.graph.remove("applications", agent["id"]), stacks=[
        RunStack(f"run-{RUN}", {"haymaker:env": "dev"})], run_outputs={"inventory": [
            {"scenario": VM, "client_id": agent["appId"], "resource_group_name": f"{PREFIX}{VM}"}]})
    fake_cloud.graph.read_lag = 0  # the destroy's delete is not even listed any more: only deleted items will say
    life, _ = lifecycle(fake_cloud, driver, agents=[(VM, "agent-1"), (VAULTS, "agent-2")])
    result = life.teardown(RUN)
    assert (result.outcome, result.error) == ("forced", ""), result
    assert sorted(x.kind for x in result.purged) == ["deleted_application", "deleted_service_principal"]
    fake_cloud.time.sleep(60)
    assert [o["displayName"] for o in fake_cloud.graph.deleted.values()] == []  # nothing left counting on a quota


# --- groups: Group.Create cannot delete a group; HayMaker's administrative unit is where its groups live ------

def test_a_group_is_created_in_the_unit_and_deleted_by_the_identity_that_administers_its_groups(fake_cloud):
    """What identity-03's agent does (POST the group to the unit's members, Group.Create and
    AdministrativeUnit.Read.All), then what the teardown does as the same identity, Groups Administrator of the
    unit only: the group goes. Without the role, or outside the unit, Graph refuses (Group.Create cannot delete)."""
    import requests

    permissions = [*IDENTITY_03_PERMISSIONS, "AdministrativeUnit.Read.All"]
    fake_cloud.borrowable_identity(IDENTITY, permissions)
    token = connect(fake_cloud)._graph(IDENTITY).credential.get_token(
        fake_cloud.endpoints().graph_scope).token
    url = f"{fake_cloud.graph.base_url}/v1.0/directory/administrativeUnits/{ADMIN_UNIT_ID}/members"
    body = {"@odata.type": "#microsoft.graph.group", "displayName": f"{PREFIX}lift-operations",
            "mailNickname": f"{PREFIX}lift-operations", "mailEnabled": False, "securityEnabled": True,
            "owners@odata.bind": [f"https://graph.microsoft.com/v1.0/directoryObjects/oid-of-{IDENTITY}"]}
    created = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, verify=fake_cloud.ca_file)
    assert created.status_code == 201, created.text
    outside = fake_cloud.graph.add("groups", f"{PREFIX}rental-desk", owner=IDENTITY)  # made before the unit existed
    driver = leased_run(f"{GROUPS}=0", (GROUPS, permissions, [IDENTITY]))
    life, _ = lifecycle(fake_cloud, driver)
    result = life.teardown(RUN)
    assert result.outcome == "failed"
    assert [x.name for x in result.leftovers_remaining] == [outside["displayName"]]
    assert "is not in that unit, or the role is not assigned" in result.error, result.error
    assert fake_cloud.graph.live_names() == [outside["displayName"]]  # the unit's group went, as its administrator
    fake_cloud.graph.unit_roles.clear()  # without the role, Group.Create alone deletes nothing, even an owned group
    with pytest.raises(AzureError, match="403 Authorization_RequestDenied"):
        connect(fake_cloud)._graph(IDENTITY).delete(f"/groups/{outside['id']}")
