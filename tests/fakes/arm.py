"""Azure Resource Manager, as the run lifecycle meets it: subscriptions, resource groups, resources
by id, providers, Resource Graph, Container Apps job executions, and the soft-deleted Key Vaults and
Cognitive Services accounts a subscription keeps.

Bodies follow the examples in Azure/azure-rest-api-specs (Subscriptions_Get, ResourceGroups_Delete,
Resources_DeleteById, Providers_Get, Resources (Resource Graph), Jobs_ListExecutions, Jobs_Start,
Vaults_ListDeleted, Vaults_PurgeDeleted, DeletedAccounts_List, DeletedAccounts_Purge).

Deletes and purges are long-running (Azure/azure-resource-manager-rpc, v1.0/async-api-reference.md, "202
Accepted and Location Headers"): 202 with ``Location`` and ``Retry-After``; the Location answers 202 while
the operation runs and, once it ends, "the exact same response that would have been returned had the
operation been executed synchronously" — 200 on success, the error on failure. A group being deleted stays
readable with ``provisioningState: Deleting`` until its operation ends (the provisioningState pattern, same
page). Each operation takes ``delete_seconds`` of stand-in time; ``delete_plans`` makes one end ``Failed``
or stay ``InProgress`` for ever (a VPN gateway's group takes 30 minutes and more). A group with a
``CanNotDelete`` lock refuses its delete at once: 409 ``ScopeLocked`` ("Lock your resources to protect your
infrastructure", learn.microsoft.com/azure/azure-resource-manager/management/lock-resources).

API versions are registered per region and rolled out region by region: ``rollout`` names, per type, the
versions a region already serves; a request for a resource in a region that does not serve its version yet
is refused with 400 ``NoRegisteredProviderFound`` naming the versions it does serve, while Providers_Get
already lists the new one.

Resource Graph is an index that lags ARM (its stated target: 95% of changes within 30 s, no upper bound, as
quoted by Azure/azure-dev#540; Microsoft's pages give no figure, so 30 s is the default): deleted items stay
in its answers for ``index_lag`` seconds of stand-in time (None: for ever). It allots each user a quota of
queries per time window (learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-
throttled-requests: "at most 15 queries within every 5-second window"): every answer carries
``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after`` (hh:mm:ss), and a query over the quota
gets 429 with those headers and no ``Retry-After``.

Every resource and group carries ``systemData`` (who created it, and when), as the ARM resource provider
contract asks of every resource since 2020 (Azure/azure-resource-manager-rpc, v1.0/common-api-contracts.md,
"System Metadata for all Azure resources"): ``createdBy`` is "a string identifier for the identity that
created the resource" and ``createdByType`` one of User, Application, ManagedIdentity, Key. The contract
leaves the identifier's form open; here it is the creator's application id unless a test says otherwise,
and a resource made before systemData existed (``created_by=""``) has none.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Callable

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
    system_data: dict | None = None
    provisioning_state: str = "Succeeded"

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def resource_group(self) -> str:
        return re.search(r"/resourceGroups/([^/]+)", self.id, re.I).group(1)

    def body(self) -> dict:
        body = {"id": self.id, "name": self.name, "type": self.type, "location": self.location, "tags": self.tags,
                "properties": {"provisioningState": self.provisioning_state}}
        if self.system_data:
            body["systemData"] = self.system_data
        return body


def system_data(created_by: str, created_by_type: str = "Application") -> dict | None:
    """``systemData`` as ARM returns it (None for a resource made before ARM recorded it)."""
    if not created_by:
        return None
    return {"createdBy": created_by, "createdByType": created_by_type, "createdAt": "2026-11-21T06:02:11.52Z",
            "lastModifiedBy": created_by, "lastModifiedByType": created_by_type,
            "lastModifiedAt": "2026-11-21T06:02:11.52Z"}


@dataclass
class Operation:
    """A long-running operation: it ends ``seconds`` after it started (None: never), as ``outcome``."""

    started: float
    seconds: float | None
    outcome: str  # Succeeded | Failed
    success: Reply
    failure: Reply | None = None
    on_success: Callable[[], None] = lambda: None
    on_failure: Callable[[], None] = lambda: None
    ended: bool = False


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
        self.default_creator = ""  # who created what a test adds without saying (the deployer, in FakeCloud)
        # ARM says how long to wait before polling (often 15 s; whole seconds: the SDK parses an int). Deletes
        # say 15 (the contract's least is 10); a job start says 1, which the SDK waits in real time. A value of 0
        # would make the SDK fall back to its own 30 s interval.
        self.retry_after = "1"
        self.delete_retry_after = "15"
        self.time = None  # the stand-ins' clock (FakeCloud sets it); real time when alone
        self._op_ids = itertools.count(1)
        self.reset_state()
        s = self.route
        s("GET", SUB, self._subscription)
        s("GET", SUB + r"/resourcegroups", self._list_groups)
        s("GET", RG, self._get_group)
        s("DELETE", RG, self._delete_group)
        s("GET", SUB + r"/providers/(?P<ns>Microsoft\.[A-Za-z]+)", self._provider)
        s("GET", SUB + r"/operationresults/(?P<id>[0-9]+)", self._poll)
        s("POST", r"/_stand-in/sleep", self._sleep)
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
        # seconds Resource Graph keeps listing what ARM deleted (None: for ever); see the module's docstring
        self.index_lag: float | None = 30.0
        self._index_ghosts: dict[str, tuple[dict, float | None]] = {}  # id -> (row, stand-in time it goes)
        self._operations: dict[str, Operation] = {}
        self.delete_seconds = 20.0  # how long a delete or purge runs (stand-in time)
        # group name (lower case) -> ("Failed", seconds, error Reply) or ("InProgress", None, None)
        self.delete_plans: dict[str, tuple] = {}
        self.locks: set[str] = set()  # groups (lower case) with a CanNotDelete lock
        # (namespace, type) -> {region: versions it serves}; types not named serve every listed version everywhere
        self.rollout: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.quota, self.quota_window = 15, 5.0  # Resource Graph queries per user per window (seconds)
        self._quota_used: dict[str, tuple[float, int]] = {}  # user -> (window start, queries in it)

    def reset(self) -> None:
        super().reset()
        self.reset_state()
        self.page_size = 100

    def now(self) -> float:
        return self.time.monotonic() if self.time is not None else time.monotonic()

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self._tick()
            return super().handle(request)

    def group_id(self, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{name}"

    def add_group(self, name: str, tags: dict | None = None, location: str = "swedencentral",
                  created_by: str | None = None, created_by_type: str = "Application") -> Resource:
        group = Resource(self.group_id(name), GROUP_TYPE, location, dict(tags or {}),
                         system_data(self.default_creator if created_by is None else created_by, created_by_type))
        self.groups[name.lower()] = group
        return group

    def add_resource(self, group: str, type_: str, name: str, tags: dict | None = None,
                     created_by: str | None = None, location: str = "swedencentral") -> Resource:
        if group.lower() not in self.groups:
            self.add_group(group, created_by=created_by)
        res = Resource(f"{self.group_id(group)}/providers/{type_}/{name}", type_, location, tags=dict(tags or {}),
                       system_data=system_data(self.default_creator if created_by is None else created_by))
        self.resources[res.id.lower()] = res
        return res

    def add_deleted(self, kind: str, name: str, group: str, tags: dict | None = None) -> Deleted:
        item = Deleted(kind, name, group, "swedencentral", dict(tags or {}))
        self.deleted.append(item)
        return item

    def remove_group(self, name: str) -> None:
        """What a stack destroy does to a group: gone from ARM (Resource Graph may lag)."""
        group = self.groups.pop(name.lower(), None)
        if group is None:
            return
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
            until = None if self.index_lag is None else self.now() + self.index_lag
            self._index_ghosts[item.id.lower()] = (self._row(item), until)

    # long-running operations -------------------------------------------------------------------------
    def _accepted(self, success: Reply, *, seconds: float = 0.0, plan: tuple | None = None,
                  on_success: Callable[[], None] = lambda: None, on_failure: Callable[[], None] = lambda: None) -> Reply:
        """Start an operation: 202 and the Location to poll. ``plan``: ("Failed", seconds, error) or
        ("InProgress", None, None) instead of success after ``seconds``."""
        op = str(next(self._op_ids))
        outcome, seconds, failure = plan if plan else ("Succeeded", seconds, None)
        self._operations[op] = Operation(self.now(), seconds, outcome, success, failure, on_success, on_failure)
        self._tick()
        return Reply(202, None, {"Location": self._location(op), "Retry-After": self._pause(op)})

    def _pause(self, op: str) -> str:
        return self.delete_retry_after if self._operations[op].seconds != 0 else self.retry_after

    def end_operations(self) -> None:
        """Let every running operation end now, as planned (a test done with one that never ends)."""
        with self._lock:
            for operation in self._operations.values():
                if not operation.ended:
                    operation.seconds = max(self.now() - operation.started, 0.0)
                    if operation.outcome == "InProgress":
                        operation.outcome = "Succeeded"
            self._tick()

    def _location(self, op: str) -> str:
        return f"{self.base_url}/subscriptions/{self.subscription_id}/operationresults/{op}?api-version=2025-04-01"

    def _tick(self) -> None:
        """End every operation whose time has come, applying what it does."""
        now = self.now()
        for operation in self._operations.values():
            if not operation.ended and operation.seconds is not None and now >= operation.started + operation.seconds:
                operation.ended = True
                (operation.on_success if operation.outcome == "Succeeded" else operation.on_failure)()

    def authorize(self, request: Request) -> Reply | None:
        if request.path == "/_stand-in/sleep":
            return None
        return super().authorize(request)

    def _sleep(self, r: Request) -> Reply:
        """Not ARM: how the stand-in `pulumi` waits a Retry-After, on the stand-ins' clock."""
        if self.time is not None:
            self.time.sleep(float(r.query.get("seconds", "0")))
        return Reply(204)

    def _poll(self, r: Request) -> Reply:
        operation = self._operations.get(r.params["id"])
        if operation is None:
            return error(404, "NotFound", "no such operation")
        if not operation.ended:
            return Reply(202, None, {"Location": self._location(r.params["id"]), "Retry-After": self._pause(r.params["id"])})
        return operation.success if operation.outcome == "Succeeded" else operation.failure

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
        return g.body()

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
        refused, name = self._own(r), r.params["rg"].lower()
        if refused or name not in self.groups:
            return refused or error(404, "ResourceGroupNotFound", f"Resource group '{r.params['rg']}' could not be found.")
        group = self.groups[name]
        if name in self.locks:
            return error(409, "ScopeLocked", f"The scope '{group.id}' cannot perform delete operation because following "
                                             f"scope(s) are locked: '{group.id.lower()}'. Please remove the lock and try "
                                             "again.")
        # A second delete of a group being deleted: ARM's answer is not documented; here a new operation that
        # ends with the first (the teardown does not send one: it waits for the group to go).
        group.provisioning_state = "Deleting"

        def fail():
            group.provisioning_state = "Succeeded"

        return self._accepted(Reply(200), seconds=self.delete_seconds, plan=self.delete_plans.get(name),
                              on_success=lambda: self.remove_group(name), on_failure=fail)

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
        res = self.resources.get(r.path.lower())
        location = res.location if res else "swedencentral"
        known = self.api_versions.get(namespace, {}).get(short)
        served = self.rollout.get((namespace, short), {}).get(location, known)
        if known is None or r.query["api-version"] not in (served or []):
            return None, error(400, "NoRegisteredProviderFound",
                               f"No registered resource provider found for location '{location}' and API version "
                               f"'{r.query['api-version']}' for type '{short}'. The supported api-versions are "
                               f"'{', '.join(served or [])}'. The supported locations are 'swedencentral, northeurope'.")
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
        if res.resource_group.lower() in self.locks:
            return error(409, "ScopeLocked", f"The scope '{res.id}' cannot perform delete operation because following "
                                             f"scope(s) are locked: '{self.group_id(res.resource_group).lower()}'.")
        res.provisioning_state = "Deleting"
        return self._accepted(Reply(200), seconds=self.delete_seconds,
                              on_success=lambda: self._forget(self.resources.pop(res.id.lower())))

    # Resource Graph --------------------------------------------------------------------------------------
    def _row(self, item: Resource) -> dict:
        is_group = item.type == GROUP_TYPE
        return {"id": item.id, "name": item.name, "type": GROUP_CONTAINER_TYPE if is_group else item.type.lower(),
                "resourceGroup": item.name if is_group else item.resource_group, "tags": item.tags}

    def _index(self) -> list[dict]:
        rows = [self._row(x) for x in [*self.groups.values(), *self.resources.values()]]
        now = self.now()
        for rid, (row, until) in list(self._index_ghosts.items()):
            if until is not None and now >= until:
                del self._index_ghosts[rid]
            else:
                rows.append(row)
        return rows

    def _quota(self, r: Request) -> tuple[bool, dict]:
        """(within quota, the quota headers) for this caller's query."""
        from tests.fakes.login import claims_of

        token = r.headers.get("authorization", " ").split(" ", 1)[1]
        user = claims_of(token).get("appid", "") if token.count(".") == 2 else token
        now = self.now()
        start, used = self._quota_used.get(user, (now, 0))
        if now >= start + self.quota_window:
            start, used = now, 0
        allowed = used < self.quota
        used += 1 if allowed else 0
        self._quota_used[user] = (start, used)
        left = max(0.0, start + self.quota_window - now)
        resets = f"{int(left // 3600):02d}:{int(left % 3600 // 60):02d}:{int(left % 60 + (left % 1 > 0)):02d}"
        return allowed, {"x-ms-user-quota-remaining": str(max(self.quota - used, 0)),
                         "x-ms-user-quota-resets-after": resets}

    def _resource_graph(self, r: Request) -> Reply:
        if "api-version" not in r.query:
            return self._own(r)
        allowed, quota = self._quota(r)
        if not allowed:  # no Retry-After: the quota headers say when the window resets
            return error(429, "RateLimiting", "Please provide below info when asking for support: timestamp = "
                                              "2026-11-21T14:00:00Z, correlationId = 0.", quota)
        reply = self._resource_graph_answer(r)
        reply.headers.update(quota)
        return reply

    def _resource_graph_answer(self, r: Request) -> Reply:
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
        return self._accepted(Reply(200), seconds=self.delete_seconds, on_success=lambda: self._drop(found))

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
        return self._accepted(Reply(204), seconds=self.delete_seconds, on_success=lambda: self._drop(found))

    def _drop(self, item: Deleted) -> None:
        if item in self.deleted:
            self.deleted.remove(item)
