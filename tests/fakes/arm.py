"""Azure Resource Manager, as the run lifecycle meets it: subscriptions, resource groups, resources
by id, providers, Resource Graph, Container Apps job executions, and the soft-deleted Key Vaults and
Cognitive Services accounts a subscription keeps.

Bodies follow the examples in Azure/azure-rest-api-specs (Subscriptions_Get, ResourceGroups_Delete,
Resources_DeleteById, Providers_Get, Resources (Resource Graph), Jobs_ListExecutions, Jobs_Start,
Vaults_ListDeleted, Vaults_PurgeDeleted, DeletedAccounts_List, DeletedAccounts_Purge). Deletes are
long-running: 202 with ``Location`` and ``Retry-After``, polled until done.

Resource Graph is an index that lags ARM ("most changes within 30 s, no upper bound"): with
``index_lag`` set, deleted items stay in its answers for that many more queries (None: for ever).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from tests.fakes.armroles import RoleDefinitions
from tests.fakes.server import Reply, Request, Service, error

GROUP_TYPE = "Microsoft.Resources/resourceGroups"
GROUP_CONTAINER_TYPE = "microsoft.resources/subscriptions/resourcegroups"  # as Resource Graph spells it
SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"


@dataclass
class Resource:
    id: str
    type: str  # Microsoft.Web/sites
    location: str = "swedencentral"
    tags: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def resource_group(self) -> str:
        return re.search(r"/resourceGroups/([^/]+)", self.id, re.I).group(1)

    def body(self) -> dict:
        return {"id": self.id, "name": self.name, "type": self.type, "location": self.location, "tags": self.tags,
                "properties": {"provisioningState": "Succeeded"}}


@dataclass
class Deleted:
    """A soft-deleted Key Vault or Cognitive Services account."""

    kind: str  # "vault" or "cognitive"
    name: str
    resource_group: str
    location: str
    tags: dict = field(default_factory=dict)


class FakeArm(RoleDefinitions, Service):
    name = "arm"

    def __init__(self, subscription_id: str, tenant_id: str):
        super().__init__()
        self.subscription_id, self.tenant_id = subscription_id, tenant_id
        self.page_size = 100
        self.poll_count = 0  # further 202 answers to a long-running operation's Location before it is done
        # ARM says how long to wait before polling (often 15 s; whole seconds: the SDK parses an int); the
        # least it says here is 1 s. A value of 0 would make the SDK fall back to its own 30 s interval.
        self.retry_after = "1"
        self._op_ids = itertools.count(1)
        self.reset_state()
        s = self.route
        s("GET", SUB, self._subscription)
        s("GET", SUB + r"/resourcegroups", self._list_groups)
        s("GET", RG, self._get_group)
        s("DELETE", RG, self._delete_group)
        s("GET", SUB + r"/providers/(?P<ns>Microsoft\.[A-Za-z]+)", self._provider)
        s("GET", SUB + r"/operationresults/(?P<id>[0-9]+)", self._poll)
        s("POST", r"/providers/Microsoft\.ResourceGraph/resources", self._resource_graph)
        s("GET", RG + r"/providers/Microsoft\.App/jobs/(?P<job>[^/]+)/executions", self._executions)
        s("POST", RG + r"/providers/Microsoft\.App/jobs/(?P<job>[^/]+)/start", self._start_job)
        s("GET", SUB + r"/providers/Microsoft\.KeyVault/deletedVaults", self._deleted_vaults)
        s("GET", SUB + r"/providers/Microsoft\.KeyVault/locations/(?P<loc>[^/]+)/deletedVaults/(?P<name>[^/]+)",
          self._get_deleted_vault)
        s("POST", SUB + r"/providers/Microsoft\.KeyVault/locations/(?P<loc>[^/]+)/deletedVaults/(?P<name>[^/]+)/purge",
          self._purge_vault)
        s("GET", SUB + r"/providers/Microsoft\.CognitiveServices/deletedAccounts", self._deleted_accounts)
        deleted_account = (SUB + r"/providers/Microsoft\.CognitiveServices/locations/(?P<loc>[^/]+)/resourceGroups/"
                                 r"(?P<rg>[^/]+)/deletedAccounts/(?P<name>[^/]+)")
        s("GET", deleted_account, self._get_deleted_account)
        s("DELETE", deleted_account, self._purge_account)
        s("GET", SUB + r"/providers/Microsoft\.Authorization/roleAssignments", self._role_assignments)
        self.route_role_definitions()  # read-only (tests/fakes/armroles.py)
        s("GET", RG + r"/providers/(?P<ns>Microsoft\.[A-Za-z]+)/(?P<rest>.+)", self._get_resource)
        s("DELETE", RG + r"/providers/(?P<ns>Microsoft\.[A-Za-z]+)/(?P<rest>.+)", self._delete_resource)

    # state ------------------------------------------------------------------------------------------
    def reset_state(self) -> None:
        self.reset_role_definitions()
        self.groups: dict[str, Resource] = {}
        self.resources: dict[str, Resource] = {}
        self.deleted: list[Deleted] = []
        self.executions: dict[str, list[dict]] = {}
        self.api_versions: dict[str, dict[str, list[str]]] = {
            "microsoft.web": {"sites": ["2024-11-01-preview", "2024-04-01", "2023-12-01"]},
            "microsoft.storage": {"storageaccounts": ["2025-01-01", "2024-01-01"]},
            "microsoft.network": {"virtualnetworks": ["2024-05-01", "2024-03-01"],
                                  "publicipaddresses": ["2024-05-01"]},
            "microsoft.app": {"jobs": ["2026-07-01", "2025-01-01"]},
        }
        self.role_assignments: list[tuple[str, str]] = []  # (principal object id, role definition guid)
        self.index_lag: int | None = 0
        self._index_ghosts: dict[str, tuple[dict, int | None]] = {}  # id -> (row, queries left)
        self._operations: dict[str, tuple[int, Reply]] = {}

    def reset(self) -> None:
        super().reset()
        self.reset_state()
        self.page_size, self.poll_count = 100, 0

    def group_id(self, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{name}"

    def add_group(self, name: str, tags: dict | None = None, location: str = "swedencentral") -> Resource:
        group = Resource(self.group_id(name), GROUP_TYPE, location, dict(tags or {}))
        self.groups[name.lower()] = group
        return group

    def add_resource(self, group: str, type_: str, name: str, tags: dict | None = None) -> Resource:
        if group.lower() not in self.groups:
            self.add_group(group)
        res = Resource(f"{self.group_id(group)}/providers/{type_}/{name}", type_, tags=dict(tags or {}))
        self.resources[res.id.lower()] = res
        return res

    def add_deleted(self, kind: str, name: str, group: str, tags: dict | None = None) -> Deleted:
        item = Deleted(kind, name, group, "swedencentral", dict(tags or {}))
        self.deleted.append(item)
        return item

    def remove_group(self, name: str) -> None:
        """What a stack destroy does to a group: gone from ARM (Resource Graph may lag)."""
        group = self.groups.pop(name.lower())
        self._forget(group)
        for rid, res in list(self.resources.items()):
            if res.resource_group.lower() == name.lower():
                self._forget(self.resources.pop(rid))

    def exists(self, resource_id: str) -> bool:
        rid = resource_id.lower()
        return rid in self.resources or any(g.id.lower() == rid for g in self.groups.values())

    def _forget(self, item: Resource) -> None:
        """Gone from ARM; Resource Graph may keep listing it for a while."""
        if self.index_lag != 0:
            self._index_ghosts[item.id.lower()] = (self._row(item), self.index_lag)

    # long-running operations -------------------------------------------------------------------------
    def _accepted(self, final: Reply) -> Reply:
        op = str(next(self._op_ids))
        self._operations[op] = (self.poll_count, final)
        location = f"{self.base_url}/subscriptions/{self.subscription_id}/operationresults/{op}?api-version=2025-04-01"
        return Reply(202, None, {"Location": location, "Retry-After": self.retry_after})

    def _poll(self, r: Request) -> Reply:
        left, final = self._operations.get(r.params["id"], (0, error(404, "NotFound", "no such operation")))
        if left > 0:
            self._operations[r.params["id"]] = (left - 1, final)
            return Reply(202, None, {"Location": f"{self.base_url}{r.path}?api-version=2025-04-01",
                                     "Retry-After": self.retry_after})
        return final

    # handlers -----------------------------------------------------------------------------------------
    def _own(self, r: Request) -> Reply | None:
        if "api-version" not in r.query:
            return error(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
        if r.params.get("sub", self.subscription_id).lower() != self.subscription_id.lower():
            return error(404, "SubscriptionNotFound", f"The subscription '{r.params['sub']}' could not be found.")
        return None

    def _subscription(self, r: Request) -> Reply:
        return self._own(r) or Reply(200, {
            "id": f"/subscriptions/{self.subscription_id}", "authorizationSource": "RoleBased",
            "subscriptionId": self.subscription_id, "tenantId": self.tenant_id, "displayName": "HayMaker dev",
            "state": "Enabled", "managedByTenants": [],
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"}})

    def _group_body(self, g: Resource) -> dict:
        return {"id": g.id, "name": g.name, "type": GROUP_TYPE, "location": g.location, "tags": g.tags,
                "properties": {"provisioningState": "Succeeded"}}

    def _list_groups(self, r: Request) -> Reply:
        refused = self._own(r)
        if refused:
            return refused
        groups = sorted(self.groups.values(), key=lambda g: g.name)
        match = re.fullmatch(r"tagName eq '([^']*)' and tagValue eq '([^']*)'", r.query.get("$filter", ""))
        if r.query.get("$filter") and not match:
            return error(400, "InvalidFilterInQueryString", f"Invalid $filter '{r.query['$filter']}' specified in the query string.")
        if match:
            groups = [g for g in groups if g.tags.get(match.group(1)) == match.group(2)]
        return self._page(r, [self._group_body(g) for g in groups])

    def _page(self, r: Request, items: list) -> Reply:
        start = int(r.query.get("$skiptoken") or 0)
        page = items[start:start + self.page_size]
        body = {"value": page}
        if start + self.page_size < len(items):
            body["nextLink"] = f"{self.base_url}{r.path}?api-version={r.query['api-version']}&$skiptoken={start + self.page_size}" \
                + (f"&$filter={r.query['$filter']}" if r.query.get("$filter") else "")
        return Reply(200, body)

    def _get_group(self, r: Request) -> Reply:
        refused = self._own(r)
        group = self.groups.get(r.params["rg"].lower())
        if refused or group is None:
            return refused or error(404, "ResourceGroupNotFound", f"Resource group '{r.params['rg']}' could not be found.")
        return Reply(200, self._group_body(group))

    def _delete_group(self, r: Request) -> Reply:
        refused = self._own(r)
        if refused or r.params["rg"].lower() not in self.groups:
            return refused or error(404, "ResourceGroupNotFound", f"Resource group '{r.params['rg']}' could not be found.")
        self.remove_group(r.params["rg"])
        return self._accepted(Reply(200))

    def _provider(self, r: Request) -> Reply:
        refused = self._own(r)
        types = self.api_versions.get(r.params["ns"].lower())
        if refused or types is None:
            return refused or error(404, "InvalidResourceNamespace",
                                    f"The resource namespace '{r.params['ns']}' is invalid.")
        return Reply(200, {"id": f"/subscriptions/{self.subscription_id}/providers/{r.params['ns']}",
                           "namespace": r.params["ns"], "registrationState": "Registered",
                           "resourceTypes": [{"resourceType": t, "locations": ["Sweden Central", "North Europe"],
                                              "apiVersions": v, "capabilities": "SupportsTags, SupportsLocation"}
                                             for t, v in types.items()]})

    def _typed(self, r: Request) -> tuple[Resource | None, Reply | None]:
        refused = self._own(r)
        if refused:
            return None, refused
        rest = r.params["rest"].split("/")
        type_ = "/".join([r.params["ns"], *rest[0:-1:2]]).lower()
        namespace, _, short = type_.partition("/")
        known = self.api_versions.get(namespace, {}).get(short)
        if known is None or r.query["api-version"] not in known:
            return None, error(400, "NoRegisteredProviderFound",
                               f"No registered resource provider found for location 'swedencentral' and API version "
                               f"'{r.query['api-version']}' for type '{short}'. The supported api-versions are "
                               f"'{', '.join(known or [])}'.")
        res = self.resources.get(r.path.lower())
        if res is None:
            return None, error(404, "ResourceNotFound",
                               f"The Resource '{r.params['ns']}/{r.params['rest']}' under resource group "
                               f"'{r.params['rg']}' was not found. For more details please go to "
                               "https://aka.ms/ARMResourceNotFoundFix")
        return res, None

    def _get_resource(self, r: Request) -> Reply:
        res, refused = self._typed(r)
        return refused or Reply(200, res.body())

    def _delete_resource(self, r: Request) -> Reply:
        res, refused = self._typed(r)
        if refused:
            return refused
        self._forget(self.resources.pop(res.id.lower()))
        return self._accepted(Reply(200))

    # Resource Graph --------------------------------------------------------------------------------------
    def _row(self, item: Resource) -> dict:
        is_group = item.type == GROUP_TYPE
        return {"id": item.id, "name": item.name, "type": GROUP_CONTAINER_TYPE if is_group else item.type.lower(),
                "resourceGroup": item.name if is_group else item.resource_group, "tags": item.tags}

    def _index(self) -> list[dict]:
        rows = [self._row(x) for x in [*self.groups.values(), *self.resources.values()]]
        for rid, (row, left) in list(self._index_ghosts.items()):
            rows.append(row)
            if left is not None:
                if left <= 1:
                    del self._index_ghosts[rid]
                else:
                    self._index_ghosts[rid] = (row, left - 1)
        return rows

    def _resource_graph(self, r: Request) -> Reply:
        if "api-version" not in r.query:
            return self._own(r)
        body = r.json() or {}
        if [s.lower() for s in body.get("subscriptions") or []] != [self.subscription_id.lower()]:
            return error(400, "BadRequest", "Please provide the subscription the query runs in.")
        rows = self._query(body.get("query", ""))
        if rows is None:
            return error(400, "BadRequest", "Query is invalid. Please refer to the documentation for the Azure Resource "
                                            "Graph service and fix the error before retrying.")
        options = body.get("options") or {}
        start = int(options.get("$skipToken") or 0)
        page = rows[start:start + self.page_size]
        answer = {"totalRecords": len(rows), "count": len(page), "resultTruncated": "false", "facets": [],
                  "data": page}
        if start + self.page_size < len(rows):
            answer["$skipToken"] = str(start + self.page_size)
        return Reply(200, answer)

    def _query(self, kql: str) -> list[dict] | None:
        """The two queries the lifecycle sends (a run's resources; orphans of runs that are gone)."""
        if not kql.startswith("resources | union resourcecontainers"):
            return None
        rows = self._index()
        run = re.search(r"tags\['haymaker-run'\] =~ '([^']*)'", kql)
        if run:
            return [self._project(x) for x in rows if x["tags"].get("haymaker-run", "").lower() == run.group(1).lower()]
        alive = re.search(r"!in \(([^)]*)\)", kql)
        if "tags['AzureHayMaker-managed'] =~ 'true'" in kql and alive:
            live = {a.strip().strip("'") for a in alive.group(1).split(",")}
            return [{**self._project(x), "run": x["tags"]["haymaker-run"]} for x in rows
                    if x["tags"].get("AzureHayMaker-managed") == "true" and x["tags"].get("haymaker-run")
                    and x["tags"]["haymaker-run"] not in live]
        return None

    @staticmethod
    def _project(row: dict) -> dict:
        return {k: row[k] for k in ("id", "name", "type", "resourceGroup")}

    # role assignments (RoleAssignments_ListForSubscription) -------------------------------------------------
    def _role_assignments(self, r: Request) -> Reply:
        refused = self._own(r)
        if refused:
            return refused
        match = re.fullmatch(r"assignedTo\('([^']*)'\)", r.query.get("$filter", ""))
        if r.query.get("$filter") and not match:
            return error(400, "InvalidFilter", f"The filter '{r.query['$filter']}' is not supported.")
        sub = f"/subscriptions/{self.subscription_id}"
        return self._page(r, [
            {"id": f"{sub}/providers/Microsoft.Authorization/roleAssignments/{i:08d}-0000-4000-8000-000000000000",
             "name": f"{i:08d}-0000-4000-8000-000000000000", "type": "Microsoft.Authorization/roleAssignments",
             "properties": {"roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                            "principalId": principal, "principalType": "ServicePrincipal", "scope": sub,
                            **({"condition": extra[0], "conditionVersion": "2.0"} if extra else {})}}
            for i, (principal, role, *extra) in enumerate(self.role_assignments)
            if not match or principal == match.group(1)])

    # Container Apps jobs ---------------------------------------------------------------------------------
    def _executions(self, r: Request) -> Reply:
        refused = self._own(r)
        key = f"{r.params['rg']}/{r.params['job']}".lower()
        if refused or key not in self.executions:
            return refused or error(404, "ResourceNotFound",
                                    f"The Resource 'Microsoft.App/jobs/{r.params['job']}' under resource group "
                                    f"'{r.params['rg']}' was not found.")
        return Reply(200, {"value": self.executions[key]})

    def add_job(self, group: str, job: str, started: list[str] = ()) -> None:
        self.executions[f"{group}/{job}".lower()] = [self._execution(group, job, i, t) for i, t in enumerate(started)]

    def _execution(self, group: str, job: str, index: int, started: str) -> dict:
        name = f"{job}-{index:07d}"
        return {"id": f"{self.group_id(group)}/providers/Microsoft.App/jobs/{job}/executions/{name}", "name": name,
                "type": "Microsoft.App/jobs/executions",
                "properties": {"status": "Running", "startTime": started, "template": {"containers": []}}}

    def _start_job(self, r: Request) -> Reply:
        refused = self._own(r)
        key = f"{r.params['rg']}/{r.params['job']}".lower()
        if refused or key not in self.executions:
            return refused or error(404, "ResourceNotFound", f"The Resource 'Microsoft.App/jobs/{r.params['job']}' "
                                                             f"under resource group '{r.params['rg']}' was not found.")
        execution = self._execution(r.params["rg"], r.params["job"], len(self.executions[key]), "2026-11-21T06:20:00Z")
        self.executions[key].append(execution)
        return self._accepted(Reply(200, {"id": execution["id"], "name": execution["name"]}))

    # soft-deleted vaults and accounts ------------------------------------------------------------------------
    def _vault_body(self, d: Deleted) -> dict:
        sub = f"/subscriptions/{self.subscription_id}"
        return {"id": f"{sub}/providers/Microsoft.KeyVault/locations/{d.location}/deletedVaults/{d.name}",
                "name": d.name, "type": "Microsoft.KeyVault/deletedVaults",
                "properties": {"vaultId": f"{sub}/resourceGroups/{d.resource_group}/providers/Microsoft.KeyVault/vaults/{d.name}",
                               "location": d.location, "deletionDate": "2026-11-21T13:40:00Z",
                               "scheduledPurgeDate": "2027-02-19T13:40:00Z", "tags": d.tags,
                               "purgeProtectionEnabled": False}}

    def _account_body(self, d: Deleted) -> dict:
        return {"id": f"/subscriptions/{self.subscription_id}/providers/Microsoft.CognitiveServices/locations/"
                      f"{d.location}/resourceGroups/{d.resource_group}/deletedAccounts/{d.name}",
                "name": d.name, "type": "Microsoft.CognitiveServices/accounts", "location": d.location,
                "kind": "TextAnalytics", "sku": {"name": "S0"}, "tags": d.tags,
                "properties": {"provisioningState": "Deleted", "deletionDate": "2026-11-21T13:40:00Z",
                               "scheduledPurgeDate": "2026-12-19T13:40:00Z"}}

    def _find_deleted(self, r: Request, kind: str) -> Deleted | None:
        return next((d for d in self.deleted if d.kind == kind and d.name.lower() == r.params["name"].lower()
                     and d.location == r.params["loc"]
                     and d.resource_group.lower() == r.params.get("rg", d.resource_group).lower()), None)

    def _deleted_vaults(self, r: Request) -> Reply:
        return self._own(r) or self._page(r, [self._vault_body(d) for d in self.deleted if d.kind == "vault"])

    def _get_deleted_vault(self, r: Request) -> Reply:
        found = self._find_deleted(r, "vault")
        return self._own(r) or (Reply(200, self._vault_body(found)) if found else error(
            404, "DeletedVaultNotFound", f"Deleted vault {r.params['name']} was not found."))

    def _purge_vault(self, r: Request) -> Reply:
        refused, found = self._own(r), self._find_deleted(r, "vault")
        if refused or found is None:
            return refused or error(404, "DeletedVaultNotFound", f"Deleted vault {r.params['name']} was not found.")
        self.deleted.remove(found)
        return self._accepted(Reply(200))

    def _deleted_accounts(self, r: Request) -> Reply:
        return self._own(r) or self._page(r, [self._account_body(d) for d in self.deleted if d.kind == "cognitive"])

    def _get_deleted_account(self, r: Request) -> Reply:
        found = self._find_deleted(r, "cognitive")
        return self._own(r) or (Reply(200, self._account_body(found)) if found else error(
            404, "ResourceNotFound", f"The deleted account {r.params['name']} was not found."))

    def _purge_account(self, r: Request) -> Reply:
        refused, found = self._own(r), self._find_deleted(r, "cognitive")
        if refused or found is None:
            return refused or error(404, "ResourceNotFound", f"The deleted account {r.params['name']} was not found.")
        self.deleted.remove(found)
        return self._accepted(Reply(204))
