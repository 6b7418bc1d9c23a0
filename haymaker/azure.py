"""Thin adapters over Azure Resource Manager and Microsoft Graph: what the lifecycle asks of the cloud.

Each method is one call, or one paged listing, made with the Azure SDK clients (and, for Graph,
azure-core's pipeline: retries with Retry-After, bearer tokens); it returns plain data. The decisions
live in haymaker/lifecycle.py. The endpoints are a parameter (public cloud by default): sovereign
clouds set them, and the tests point the real clients at local stand-ins that way.

Three readings that matter for teardown:
- "Not found" while deleting means "already gone": ``delete`` returns normally on a 404.
- Resource Graph is an index that lags ARM by seconds to minutes: it only *suggests* candidates.
  Whether something is left is decided by direct reads (``exists``) and ARM's own listing.
- A tag or a name proves nothing (haymaker/ownership.py): ``survey`` returns the run's targets, proven
  by exact name, tags, creator and owners, apart from what merely looks like the run's (suspicious).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

from haymaker.cloud import AzureAuthError, Endpoints, azure_credential, token_failure
from haymaker.errors import HayMakerError

GROUP_TYPE = "microsoft.resources/subscriptions/resourcegroups"
RESOURCE_GRAPH_WAITS = 3  # quota windows a Resource Graph query waits out before it gives up
GRAPH_RETRIES = 4  # tries of one Microsoft Graph request that meets 429s (or 5xx) before it gives up
ENTRA_KINDS = {"application": "applications", "service_principal": "servicePrincipals", "group": "groups"}
DELETED_TYPES = {"application": "application", "service_principal": "servicePrincipal", "group": "group"}
# What each principal looks after in the directory (haymaker/permissions.py): the run deployer owns the
# agents' applications and service principals (Application.ReadWrite.OwnedBy); a Graph scenario's
# borrowed identity owns what its agent created, groups (Group.Read.All to find them) and applications.
DEPLOYER_KINDS = ("application", "service_principal")


def identity_kinds(graph_permissions) -> tuple[str, ...]:
    """The directory objects a borrowed identity with these Graph permissions can find and remove."""
    perms = set(graph_permissions)
    kinds = ("group",) if perms & {"Group.Read.All", "Group.ReadWrite.All"} else ()
    if perms & {"Application.Read.All", "Application.ReadWrite.OwnedBy", "Application.ReadWrite.All"}:
        kinds += ("application", "service_principal")
    return kinds


@dataclass(frozen=True)
class Borrowed:
    """A Graph scenario's borrowed identity, as a run used it."""

    scenario: str
    client_id: str
    graph_permissions: tuple[str, ...] = ()


class AzureError(HayMakerError):
    """An Azure or Graph call failed; the message carries the service's status, code and words."""


class _Throttled(Exception):
    """A 429 from Resource Graph, kept apart from the errors ``_call`` describes."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


class GraphDenied(AzureError):
    """Graph answered 403: this caller may not do it (another may)."""


@dataclass(frozen=True)
class Leftover:
    # resource_group | resource | application | service_principal | group (live), or a soft-deleted
    # deleted_application | deleted_service_principal | deleted_group | deleted_key_vault | deleted_cognitive_account
    kind: str
    id: str
    name: str
    type: str = ""
    location: str = ""
    resource_group: str = ""
    via: str = ""  # the client id of the borrowed identity that owns a directory object ("" = the deployer)
    # Others that listed it too. Deleted items do not say who owned them: a refusal (403) tries the next one.
    also: tuple[str, ...] = ()
    reason: str = ""  # why a suspicious item is not provably the run's
    state: str = field(default="", compare=False)  # a group's provisioningState when it was found ("Deleting")


@dataclass
class Survey:
    """What a look for a run's leftovers found: the run's own (``targets``) and look-alikes (``suspicious``)."""

    targets: list = field(default_factory=list)
    suspicious: list = field(default_factory=list)


def run_resources_query(run_id: str) -> str:
    """Resource Graph query: every resource and resource group tagged with the run."""
    rid = run_id.replace("'", "")
    return ("resources | union resourcecontainers "
            f"| where tags['haymaker-run'] =~ '{rid}' "
            "| project id, name, type, resourceGroup")


def orphans_query(run_ids_alive: list[str], environment: str) -> str:
    """Resources and groups of this environment tagged with a run whose stack no longer exists."""
    alive = ", ".join(f"'{r.replace(chr(39), '')}'" for r in run_ids_alive) or "''"
    return ("resources | union resourcecontainers "
            "| where tags['AzureHayMaker-managed'] =~ 'true' "
            f"| where tags['haymaker-env'] =~ '{environment.replace(chr(39), '')}' "
            # platform resources carry no run tag: never orphans
            "| where isnotempty(tostring(tags['haymaker-run'])) "
            f"| where tostring(tags['haymaker-run']) !in ({alive}) "
            "| project id, name, type, resourceGroup, run=tostring(tags['haymaker-run'])")


def entra_prefix(run_id: str) -> str:
    return f"haymaker-{run_id.replace(chr(39), '')}-"


def app_filter(run_id: str) -> str:
    """A default (consistent) Graph query: no ConsistencyLevel header, no $count."""
    return f"startswith(displayName,'{entra_prefix(run_id)}')"


def leftover_of_row(row: dict) -> Leftover:
    if row["type"].lower() == GROUP_TYPE:
        return Leftover("resource_group", row["id"], row["name"], row["type"], resource_group=row["name"])
    return Leftover("resource", row["id"], row["name"], row["type"], resource_group=row.get("resourceGroup", ""))


def _service_error(doing: str, e: Exception) -> AzureError:
    """The service's words, with the status and code the retry classification reads."""
    status = getattr(e, "status_code", None)
    code = getattr(getattr(e, "error", None), "code", None)
    message = getattr(getattr(e, "error", None), "message", None) or str(e).strip().splitlines()[0]
    parts = [p for p in (str(status) if status else "", code or "") if p]
    return AzureError(f"cannot {doing}: {' '.join(parts)}{': ' if parts else ''}{message}"[:800])


class GraphClient:
    """Microsoft Graph v1.0 through azure-core's pipeline (retry with Retry-After, bearer token)."""

    def __init__(self, credential, endpoints: Endpoints, **options):
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (BearerTokenCredentialPolicy, HeadersPolicy, RetryPolicy,
                                                  UserAgentPolicy)

        self.base = f"{endpoints.graph}/v1.0"
        self.credential = credential
        # Graph throttles with 429 and Retry-After (learn.microsoft.com/graph/throttling): waited out, a bounded
        # number of times, by the pipeline (reads and deletes are idempotent).
        retry = {"retry_total": GRAPH_RETRIES, "retry_backoff_max": 60, **options}
        self._client = PipelineClient(base_url=self.base, policies=[
            HeadersPolicy({"Accept": "application/json"}), UserAgentPolicy("haymaker"), RetryPolicy(**retry),
            BearerTokenCredentialPolicy(credential, endpoints.graph_scope)], **options)

    def _send(self, method: str, url: str):
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
        from azure.core.rest import HttpRequest

        try:
            return self._client.send_request(HttpRequest(method, url))
        except ClientAuthenticationError as e:
            raise token_failure("Microsoft Graph", e, self.credential) from e
        except ServiceRequestError as e:
            raise AzureError(f"cannot reach Microsoft Graph ({self.base}): {e}") from e

    @staticmethod
    def _error(response, doing: str) -> AzureError:
        try:
            body = response.json().get("error", {})
        except ValueError:
            body = {}
        kind = GraphDenied if response.status_code == 403 else AzureError
        throttled = (f" (throttled by Microsoft Graph: still 429 after {GRAPH_RETRIES} tries, each after its Retry-After)"
                     if response.status_code == 429 else "")
        return kind(f"cannot {doing}: Graph {response.status_code} {body.get('code', '')}: "
                    f"{body.get('message', response.text()[:300])}{throttled}")

    def list(self, path: str, params: dict[str, str] | None = None, *, missing_ok: bool = False) -> list[dict] | None:
        """Every page of a collection; None when ``missing_ok`` and Graph answers 404 (its parent is gone)."""
        from urllib.parse import urlencode

        url, items = f"{self.base}{path}" + (f"?{urlencode(params)}" if params else ""), []
        while url:
            response = self._send("GET", url)
            if response.status_code == 404 and missing_ok:
                return None
            if response.status_code != 200:
                raise self._error(response, f"list {path}")
            page = response.json()
            items += page.get("value", [])
            url = page.get("@odata.nextLink")
        return items

    def get(self, path: str) -> dict | None:
        """One object, or None when Graph answers 404."""
        response = self._send("GET", f"{self.base}{path}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response, f"read {path}")
        return response.json()

    def exists(self, path: str) -> bool:
        response = self._send("GET", f"{self.base}{path}?$select=id")
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise self._error(response, f"read {path}")
        return True

    def delete(self, path: str) -> bool:
        """True when deleted now, False when it was gone already (404)."""
        response = self._send("DELETE", f"{self.base}{path}")
        if response.status_code not in (200, 204, 404):  # 404: already gone
            raise self._error(response, f"delete {path}")
        return response.status_code != 404


class Azure:
    def __init__(self, *, credential, subscription_id: str, endpoints: Endpoints | None = None,
                 credential_for=None, **client_options):
        """``credential_for(client_id)`` signs in as a borrowed identity (None: everything with
        ``credential``); ``client_options`` go to every SDK client (e.g. ``connection_verify``)."""
        self.credential = credential
        self.subscription_id = subscription_id
        self.endpoints = endpoints or Endpoints()
        self._credential_for = credential_for
        self._options = client_options
        self._clients: dict[str, object] = {}
        self._operations: dict[str, str] = {}  # item id (lower case) -> the URL following its delete
        self.sleep = time.sleep  # how throttling is waited out (tests: the stand-ins' clock)

    @classmethod
    def connect(cls, subscription_id: str, endpoints: Endpoints | None = None, env=None, **client_options) -> "Azure":
        import os

        from haymaker.cloud import in_github_actions

        env = dict(os.environ if env is None else env)
        credential_for = None
        if in_github_actions(env):
            # The borrowed identities trust the deployer's GitHub subjects: the same OIDC token signs in as them.
            credential_for = lambda client_id: azure_credential(endpoints, {**env, "AZURE_CLIENT_ID": client_id})  # noqa: E731
        return cls(credential=azure_credential(endpoints, env), subscription_id=subscription_id, endpoints=endpoints,
                   credential_for=credential_for, **client_options)

    # clients, built on first use -----------------------------------------------------------------
    def _client(self, name: str):
        if name not in self._clients:
            self._clients[name] = self._build(name)
        return self._clients[name]

    def _build(self, name: str):
        arm = {"base_url": self.endpoints.arm, "credential_scopes": [self.endpoints.arm_scope], **self._options}
        if name == "resources":
            from azure.mgmt.resource.resources import ResourceManagementClient

            return ResourceManagementClient(self.credential, self.subscription_id, **arm)
        if name == "subscriptions":
            from azure.mgmt.resource.subscriptions import SubscriptionClient

            return SubscriptionClient(self.credential, **arm)
        if name == "resourcegraph":
            from azure.mgmt.resourcegraph import ResourceGraphClient

            return ResourceGraphClient(self.credential, **arm)
        if name == "jobs":
            from azure.mgmt.appcontainers import ContainerAppsAPIClient

            return ContainerAppsAPIClient(self.credential, self.subscription_id, **arm)
        if name == "keyvault":
            from azure.mgmt.keyvault import KeyVaultManagementClient

            return KeyVaultManagementClient(self.credential, self.subscription_id, **arm)
        if name == "cognitive":
            from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

            return CognitiveServicesManagementClient(self.credential, self.subscription_id, **arm)
        if name == "authorization":
            from azure.mgmt.authorization import AuthorizationManagementClient

            return AuthorizationManagementClient(self.credential, self.subscription_id, **arm)
        if name == "graph":
            return GraphClient(self.credential, self.endpoints, **self._options)
        if name.startswith("graph:"):
            credential = self._credential_for(name.removeprefix("graph:")) if self._credential_for else self.credential
            return GraphClient(credential, self.endpoints, **self._options)
        raise KeyError(name)

    def _graph(self, via: str = "") -> "GraphClient":
        return self._client(f"graph:{via}" if via else "graph")

    def graph_reader(self) -> "GraphClient":
        """Microsoft Graph as the signed-in identity, for read-only checks (haymaker/grants.py)."""
        return self._graph()

    def _call(self, doing: str, operation, *, missing_ok: bool = False):
        """Run one SDK call; 404 is None when ``missing_ok``; errors say what failed in the service's words."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, \
            ServiceRequestError

        try:
            return operation()
        except ResourceNotFoundError as e:
            if missing_ok:
                return None
            raise _service_error(doing, e) from e
        except ClientAuthenticationError as e:
            response = getattr(e, "response", None)
            if response is not None and str(response.request.url).startswith(self.endpoints.arm):
                raise _service_error(doing, e) from e  # ARM refused the token it was given
            raise token_failure("Azure Resource Manager", e, self.credential) from e  # no token at all
        except HttpResponseError as e:
            raise _service_error(doing, e) from e
        except ServiceRequestError as e:
            raise AzureError(f"cannot {doing}: cannot reach {self.endpoints.arm}: {e}") from e

    # account ----------------------------------------------------------------------------------------
    def subscription_tenant(self) -> str:
        """Tenant id of the configured subscription as ARM reports it to this credential."""
        sub = self._call(f"read subscription {self.subscription_id}",
                         lambda: self._client("subscriptions").subscriptions.get(self.subscription_id))
        return sub.tenant_id

    def role_definitions_of(self, object_id: str) -> list[str]:
        """Role definition ids assigned to a principal (directly or through its groups) at the subscription."""
        scope = f"/subscriptions/{self.subscription_id}"
        found = self._call("list role assignments", lambda: list(
            self._client("authorization").role_assignments.list_for_subscription(
                filter=f"assignedTo('{object_id.replace(chr(39), '')}')")))
        return [a.role_definition_id for a in found if (a.scope or "").lower() in (scope.lower(), "/")]

    def role_conditions_of(self, object_id: str) -> dict[str, str | None]:
        """Role definition id -> the ABAC condition of the principal's assignment of it at the subscription."""
        scope = f"/subscriptions/{self.subscription_id}"
        found = self._call("list role assignments", lambda: list(
            self._client("authorization").role_assignments.list_for_subscription(
                filter=f"assignedTo('{object_id.replace(chr(39), '')}')")))
        return {a.role_definition_id: a.condition for a in found if (a.scope or "").lower() in (scope.lower(), "/")}

    def role_name(self, role_definition_id: str) -> str:
        """The name of a role definition (a custom one's is the only way to know it: its GUID is random)."""
        found = self._call(f"read role definition {role_definition_id}", lambda: self._client(
            "authorization").role_definitions.get_by_id(role_definition_id))
        return found.role_name

    def resource_groups(self) -> list[tuple[str, dict]]:
        """Every resource group of the subscription with its tags (doctor: which ones are not HayMaker's)."""
        groups = self._call("list resource groups", lambda: list(self._client("resources").resource_groups.list()))
        return [(g.name, dict(g.tags or {})) for g in groups]

    # Resource Graph ---------------------------------------------------------------------------------
    def query(self, kql: str) -> list[dict]:
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        rows, skip_token = [], None
        while True:
            request = QueryRequest(subscriptions=[self.subscription_id], query=kql,
                                   options=QueryRequestOptions(skip_token=skip_token, result_format="objectArray"))
            page = self._throttled(lambda: self._client("resourcegraph").resources(request))
            rows.extend(page.data or [])
            skip_token = page.skip_token
            if not skip_token:
                return rows

    def _throttled(self, send):
        """One Resource Graph call, waiting out its per-user quota. A throttled query gets 429 with
        ``x-ms-user-quota-resets-after`` and no Retry-After (learn.microsoft.com/azure/governance/resource-graph/
        concepts/guidance-for-throttled-requests), and the SDK retries no POST: so wait for the window to reset,
        a bounded number of times."""
        from azure.core.exceptions import HttpResponseError

        def once():
            try:
                return send()
            except HttpResponseError as e:
                if e.status_code == 429:
                    raise _Throttled(e) from e
                raise

        for attempt in range(RESOURCE_GRAPH_WAITS + 1):
            try:
                return self._call("query Resource Graph", once)
            except _Throttled as t:
                headers = t.error.response.headers if t.error.response is not None else {}
                resets = headers.get("x-ms-user-quota-resets-after", "")
                if attempt == RESOURCE_GRAPH_WAITS:
                    raise AzureError(f"cannot query Resource Graph: Resource Graph's per-user query quota stayed spent "
                                     f"after {RESOURCE_GRAPH_WAITS} waits for it to reset (429, x-ms-user-quota-resets-"
                                     f"after {resets or 'not given'}): throttled, try again later") from t.error
                self.sleep(min(_seconds(resets) or 5.0, 60.0) + 0.5)

    # who is asking ----------------------------------------------------------------------------------
    def caller_ids(self) -> frozenset[str]:
        """The signed-in identity's ids as its ARM token names them (application id, object id, user name):
        ARM records one of them as ``systemData.createdBy`` of what this identity creates."""
        from azure.core.exceptions import ClientAuthenticationError

        try:
            token = self.credential.get_token(self.endpoints.arm_scope).token
        except ClientAuthenticationError as e:
            raise token_failure("Azure Resource Manager", e, self.credential) from e
        claims = _claims(token)
        return frozenset(str(claims[k]).lower() for k in ("appid", "azp", "oid", "upn", "unique_name") if claims.get(k))

    # what a run left ----------------------------------------------------------------------------------
    def survey(self, proof) -> Survey:
        """The run's live leftovers and what only looks like them (haymaker/ownership.py).

        Groups are read by the run's exact names; ARM's listing by tag and Resource Graph's suggestions
        only find look-alikes to report. Directory objects named for the run are the run's when one of
        their owners is one of its identities."""
        targets: dict[str, Leftover] = {}
        odd: dict[str, Leftover] = {}
        groups = self._client("resources").resource_groups
        for name in sorted(proof.groups):
            g = self._call(f"read resource group {name}", lambda n=name: groups.get(n), missing_ok=True)
            if g is not None:
                self._judge_group(proof, g, targets, odd)
        run = proof.run_id.replace("'", "")
        tagged = self._call("list resource groups", lambda: list(
            groups.list(filter=f"tagName eq 'haymaker-run' and tagValue eq '{run}'")))
        for g in tagged:
            if g.id.lower() not in targets and g.id.lower() not in odd:
                self._judge_group(proof, g, targets, odd)
        for row in self.query(run_resources_query(proof.run_id)):
            item = leftover_of_row(row)
            if item.id.lower() in targets or item.id.lower() in odd or item.resource_group.lower() in proof.groups:
                continue  # known, or inside one of the run's groups (it goes with its group)
            if self.exists(item):  # the index lags: only a direct read says it is there
                odd[item.id.lower()] = replace(item, reason=f"tagged with run {proof.run_id} but outside its groups")
        live, look_alikes = self._owned_directory(proof)
        return Survey(list(targets.values()) + live, list(odd.values()) + look_alikes)

    @staticmethod
    def _judge_group(proof, g, targets: dict, odd: dict) -> None:
        item = Leftover("resource_group", g.id, g.name, GROUP_TYPE, g.location, g.name,
                        state=getattr(g.properties, "provisioning_state", None) or "")
        created_by = getattr(getattr(g, "system_data", None), "created_by", None)
        reason = proof.group_reason(g.name, g.tags, created_by)
        if reason:
            odd[g.id.lower()] = replace(item, reason=reason)
        else:
            targets[g.id.lower()] = item

    def entra_objects(self, run_id: str, via: str = "", kinds: tuple[str, ...] = DEPLOYER_KINDS) -> list[Leftover]:
        graph, out = self._graph(via), []
        for kind in kinds:
            for o in graph.list(f"/{ENTRA_KINDS[kind]}", {"$filter": app_filter(run_id), "$select": "id,displayName"}):
                out.append(Leftover(kind, o["id"], o["displayName"], via=via))
        return out

    def owners(self, item: Leftover) -> list[str] | None:
        """The ids (object and application ids) of a directory object's owners, read as ``item.via``; None
        when Graph no longer finds the object (a list answered by a replica that had not seen its delete)."""
        rows = self._graph(item.via).list(f"/{ENTRA_KINDS[item.kind]}/{item.id}/owners", missing_ok=True)
        return None if rows is None else [v for o in rows for v in (o.get("id"), o.get("appId")) if v]

    def _owned_directory(self, proof) -> tuple[list[Leftover], list[Leftover]]:
        """Directory objects named for the run, each listed by the deployer or a borrowed identity: the
        run's when an owner is one of its identities (then deleted as that owner), suspicious otherwise."""
        seen: set[str] = set()
        mine, odd = [], []
        listers = [("", DEPLOYER_KINDS)] + [(b.client_id, identity_kinds(b.graph_permissions)) for b in proof.borrowed]
        for via, kinds in listers:
            for item in self.entra_objects(proof.run_id, via, kinds):
                if item.id in seen:
                    continue
                seen.add(item.id)
                owners = self.owners(item)
                if owners is None:
                    # Entra is eventually consistent (learn.microsoft.com/graph/best-practices-concept): gone
                    # when a direct read agrees; otherwise not provably the run's, so reported, not deleted.
                    if self._graph(item.via).exists(f"/{ENTRA_KINDS[item.kind]}/{item.id}"):
                        odd.append(replace(item, reason="its owners could not be read (Graph 404): not deleted"))
                    continue
                owner = proof.owner_of(item.name, owners, item.kind)
                if owner is None:
                    odd.append(replace(item, reason=f"named for run {proof.run_id} but owned by none of its "
                                                    f"identities (owners: {', '.join(sorted(owners)) or 'none'})"))
                else:
                    mine.append(replace(item, via=owner))
        return mine, odd

    def deleted_entra_objects(self, run_id: str, via: str = "", kinds: tuple[str, ...] = DEPLOYER_KINDS) -> list[Leftover]:
        graph, out = self._graph(via), []
        for kind in kinds:
            for o in graph.list(f"/directory/deletedItems/microsoft.graph.{DELETED_TYPES[kind]}",
                                {"$filter": app_filter(run_id), "$select": "id,displayName"}):
                out.append(Leftover(f"deleted_{kind}", o["id"], o["displayName"], via=via))
        return out

    def count_deleted(self, via: str = "", kinds: tuple[str, ...] = DEPLOYER_KINDS) -> int:
        """How many HayMaker objects (named ``haymaker-…``) of these kinds the directory keeps deleted, as ``via``
        lists them: each counts against its creator's quota of 250 directory objects until purged."""
        graph = self._graph(via)
        return sum(len(graph.list(f"/directory/deletedItems/microsoft.graph.{DELETED_TYPES[kind]}",
                                  {"$filter": "startswith(displayName,'haymaker-')", "$select": "id"}))
                   for kind in kinds)

    def _deleted_directory(self, proof) -> list[Leftover]:
        """Deleted directory objects named for the run, as the deployer and each borrowed identity list them;
        one that several see is listed once, with the others in ``also`` (deleted items name no owner)."""
        found = {x.id: x for x in self.deleted_entra_objects(proof.run_id)}
        for b in proof.borrowed:
            for x in self.deleted_entra_objects(proof.run_id, b.client_id, identity_kinds(b.graph_permissions)):
                first = found.setdefault(x.id, x)
                if first is not x:
                    found[x.id] = replace(first, also=(*first.also, b.client_id))
        return list(found.values())

    def _as_whoever_may(self, item: Leftover, act):
        """``act(graph client)`` as the item's first lister, then as each other one Graph refused it to."""
        for n, via in enumerate((item.via, *item.also)):
            try:
                return act(self._graph(via))
            except GraphDenied:
                if n == len(item.also):
                    raise

    def soft_deleted(self, proof) -> Survey:
        """What the directory and the subscription keep after a delete: deleted directory objects named for
        the run (whose owner Graph alone knows: a purge it refuses is not the run's), and soft-deleted Key
        Vaults and Cognitive Services accounts whose original group is one of the run's; look-alikes (a
        group named like the run's, or the run's tag) are suspicious."""
        targets, odd = self._deleted_directory(proof), []
        prefix = entra_prefix(proof.run_id).lower()

        def sort(item: Leftover, tags) -> None:
            if proof.owns_deleted_container(item.resource_group):
                targets.append(item)
            elif item.resource_group.lower().startswith(prefix) or (tags or {}).get("haymaker-run") == proof.run_id:
                odd.append(replace(item, reason=f"its group {item.resource_group} is not one of run "
                                                f"{proof.run_id}'s groups"))

        vaults = self._call("list deleted Key Vaults", lambda: list(self._client("keyvault").vaults.list_deleted()))
        for v in vaults:
            sort(Leftover("deleted_key_vault", v.id, v.name, "Microsoft.KeyVault/deletedVaults", v.properties.location,
                          _group_of(v.properties.vault_id or "")), v.properties.tags)
        accounts = self._call("list deleted Cognitive Services accounts",
                              lambda: list(self._client("cognitive").deleted_accounts.list()))
        for a in accounts:
            sort(Leftover("deleted_cognitive_account", a.id, a.name, "Microsoft.CognitiveServices/accounts", a.location,
                          _group_of(a.id or "")), a.tags)
        return Survey(targets, odd)

    def exists(self, item: Leftover):
        """A direct read: is it still there? For a group or resource, its provisioning state ("Deleting" while its
        delete runs: ARM keeps it readable until the operation ends); "" or False when it is gone."""
        if item.kind == "resource_group":
            g = self._call(f"read resource group {item.name}", lambda: self._client("resources").resource_groups.get(
                item.name), missing_ok=True)
            return "" if g is None else (getattr(g.properties, "provisioning_state", None) or "present")
        if item.kind == "resource":
            r = self._call(f"read {item.id}", lambda: self._by_version(item, lambda v: self._client(
                "resources").resources.get_by_id(item.id, api_version=v)), missing_ok=True)
            return "" if r is None else ((r.properties or {}).get("provisioningState") or "present")
        if item.kind in ENTRA_KINDS:
            return self._as_whoever_may(item, lambda g: g.exists(f"/{ENTRA_KINDS[item.kind]}/{item.id}"))
        if item.kind.removeprefix("deleted_") in DELETED_TYPES:
            return self._as_whoever_may(item, lambda g: g.exists(f"/directory/deletedItems/{item.id}"))
        if item.kind == "deleted_key_vault":
            return self._call(f"read deleted Key Vault {item.name}", lambda: self._client("keyvault").vaults.get_deleted(
                item.name, item.location), missing_ok=True) is not None
        if item.kind == "deleted_cognitive_account":
            return self._call(f"read deleted account {item.name}", lambda: self._client("cognitive").deleted_accounts.get(
                item.location, item.resource_group, item.name), missing_ok=True) is not None
        raise AzureError(f"unknown kind of leftover {item.kind!r}")

    def delete(self, item: Leftover) -> bool:
        """Start deleting (or purging) one item: True when it was there, False when it was gone already (404).
        ARM deletes and purges are long-running: the request returns once ARM accepted it, and ``exists`` and
        ``operation`` say how it goes, so the caller waits for it within its own budget (a VPN gateway's group
        takes 30 minutes)."""
        if item.kind == "resource_group":
            if item.state == "Deleting":  # its delete runs already; what a second one does is not documented
                return True
            return self._start(item, f"delete resource group {item.name}", lambda cls: self._client(
                "resources").resource_groups.begin_delete(item.name, polling=False, cls=cls))
        if item.kind == "resource":
            return self._start(item, f"delete {item.id}", lambda cls: self._by_version(item, lambda v: self._client(
                "resources").resources.begin_delete_by_id(item.id, api_version=v, polling=False, cls=cls)))
        if item.kind in ENTRA_KINDS:
            try:
                return self._as_whoever_may(item, lambda g: g.delete(f"/{ENTRA_KINDS[item.kind]}/{item.id}"))
            except GraphDenied as e:
                if item.kind != "group":
                    raise
                raise GraphDenied(f"{e}: a group is deleted by its Graph identity as Groups Administrator of HayMaker's "
                                  "administrative unit (Group.Create cannot delete): this group is not in that unit, "
                                  "or the role is not assigned (`haymaker platform grants` prints the step); a person "
                                  "with Groups Administrator deletes it") from e
        if item.kind.removeprefix("deleted_") in DELETED_TYPES:
            return self._as_whoever_may(item, lambda g: g.delete(f"/directory/deletedItems/{item.id}"))
        if item.kind == "deleted_key_vault":
            return self._start(item, f"purge Key Vault {item.name}", lambda cls: self._client(
                "keyvault").vaults.begin_purge_deleted(item.name, item.location, polling=False, cls=cls))
        if item.kind == "deleted_cognitive_account":
            return self._start(item, f"purge Cognitive Services account {item.name}", lambda cls: self._client(
                "cognitive").deleted_accounts.begin_purge(item.location, item.resource_group, item.name, polling=False,
                                                          cls=cls))
        raise AzureError(f"unknown kind of leftover {item.kind!r}")

    def _start(self, item: Leftover, doing: str, begin) -> bool:
        """Send a long-running request and keep the URL ARM gives to follow it (Azure-AsyncOperation or Location)."""
        def where(pipeline_response, *_):
            headers = pipeline_response.http_response.headers
            return headers.get("Azure-AsyncOperation") or headers.get("Location") or ""

        poller = self._call(doing, lambda: begin(where), missing_ok=True)
        if poller is not None:
            self._operations[item.id.lower()] = poller.result()
        return poller is not None

    def operation(self, item: Leftover) -> tuple[str, str]:
        """How the delete this adapter started goes: ("InProgress" | "Succeeded" | "Failed", ARM's words), or
        ("", "") when it started none (a directory object, or a delete someone else started)."""
        from azure.core.rest import HttpRequest

        url = self._operations.get(item.id.lower())
        if not url:
            return "", ""
        response = self._call(f"read the operation deleting {item.name}", lambda: self._client(
            "resources").send_request(HttpRequest("GET", url)))
        try:
            body = response.json() if response.text() else {}
        except ValueError:
            body = {}
        status = body.get("status") if isinstance(body, dict) else None  # an Azure-AsyncOperation answers with one
        if response.status_code == 202 or status in ("InProgress", "Accepted", "Running", "Deleting"):
            return "InProgress", ""
        if response.status_code < 300 and status in (None, "Succeeded"):
            return "Succeeded", ""
        fault = (body.get("error") if isinstance(body, dict) else None) or {}
        return "Failed", f"{response.status_code} {fault.get('code', '')}: {fault.get('message', '')}".strip()

    def _by_version(self, item: Leftover, call):
        """``call(api_version)`` with the newest stable version the provider lists; during a rollout a region may
        not serve it yet (400 NoRegisteredProviderFound naming the versions it does serve): then with the newest
        stable one of those."""
        from azure.core.exceptions import HttpResponseError

        try:
            return call(self._api_version(item.type))
        except HttpResponseError as e:
            code = getattr(getattr(e, "error", None), "code", None)
            served = re.search(r"supported api-versions are '([^']*)'", str(e)) if code == "NoRegisteredProviderFound" else None
            versions = [v.strip() for v in served.group(1).split(",") if v.strip()] if served else []
            if not versions:
                raise
            return call(_newest_stable(versions))

    def _api_version(self, resource_type: str) -> str:
        """The newest stable API version ARM lists for a type (a preview only when nothing else exists)."""
        namespace, _, rtype = resource_type.partition("/")
        provider = self._call(f"read provider {namespace}", lambda: self._client("resources").providers.get(namespace))
        versions = next((t.api_versions for t in provider.resource_types or []
                         if t.resource_type.lower() == rtype.lower()), None)
        if not versions:
            raise AzureError(f"no API version known for {resource_type}: provider {namespace} does not list it")
        return _newest_stable(versions)

    # Container Apps jobs ----------------------------------------------------------------------------
    def job_executions(self, resource_group: str, job_name: str) -> list:
        return self._call(f"list executions of job {job_name}", lambda: [
            e.start_time for e in self._client("jobs").jobs_executions.list(resource_group, job_name)])

    def start_job(self, resource_group: str, job_name: str) -> None:
        self._call(f"start job {job_name}", lambda: self._client("jobs").jobs.begin_start(
            resource_group, job_name).result())


def _newest_stable(versions) -> str:
    """The newest version that is not a preview (a preview only when nothing else exists)."""
    return max([v for v in versions if "preview" not in v] or list(versions))


def _seconds(hhmmss: str) -> float:
    """``00:00:05`` -> 5.0 (0 when unreadable)."""
    try:
        h, m, sec = (float(p) for p in hhmmss.split(":"))
        return h * 3600 + m * 60 + sec
    except ValueError:
        return 0.0


def _claims(token: str) -> dict:
    """The payload of a JWT access token (not verified: these are our own token's claims)."""
    import base64
    import json

    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def _group_of(resource_id: str) -> str:
    match = re.search(r"/resourceGroups/([^/]+)", resource_id, re.I)
    return match.group(1) if match else ""


__all__ = ["Azure", "AzureAuthError", "AzureError", "Borrowed", "Endpoints", "GraphClient", "Leftover", "Survey",
           "app_filter", "identity_kinds", "orphans_query", "run_resources_query"]
