"""Thin adapters over Azure Resource Manager and Microsoft Graph: what the lifecycle asks of the cloud.

Each method is one call, or one paged listing, made with the Azure SDK clients (and, for Graph,
azure-core's pipeline: retries with Retry-After, bearer tokens); it returns plain data. The decisions
live in haymaker/lifecycle.py. The endpoints are a parameter (public cloud by default): sovereign
clouds set them, and the tests point the real clients at local stand-ins that way.

Two readings that matter for teardown:
- "Not found" while deleting means "already gone": ``delete`` returns normally on a 404.
- Resource Graph is an index that lags ARM by seconds to minutes: it only *suggests* candidates.
  Whether something is left is decided by direct reads (``exists``) and ARM's own listing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from haymaker.cloud import AzureAuthError, Endpoints, azure_credential, token_failure
from haymaker.errors import HayMakerError

GROUP_TYPE = "microsoft.resources/subscriptions/resourcegroups"
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
    # Others that listed it too. Application.Read.All lets several see an object only its owner may delete,
    # and deleted items do not say who owned them: a refusal (403) tries the next one.
    also: tuple[str, ...] = ()


def run_resources_query(run_id: str) -> str:
    """Resource Graph query: every resource and resource group tagged with the run."""
    rid = run_id.replace("'", "")
    return ("resources | union resourcecontainers "
            f"| where tags['haymaker-run'] =~ '{rid}' "
            "| project id, name, type, resourceGroup")


def orphans_query(run_ids_alive: list[str]) -> str:
    alive = ", ".join(f"'{r}'" for r in run_ids_alive) or "''"
    return ("resources | union resourcecontainers "
            "| where tags['AzureHayMaker-managed'] =~ 'true' "
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
        self._client = PipelineClient(base_url=self.base, policies=[
            HeadersPolicy({"Accept": "application/json"}), UserAgentPolicy("haymaker"), RetryPolicy(**options),
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
        return kind(f"cannot {doing}: Graph {response.status_code} {body.get('code', '')}: "
                    f"{body.get('message', response.text()[:300])}")

    def list(self, path: str, params: dict[str, str]) -> list[dict]:
        from urllib.parse import urlencode

        url, items = f"{self.base}{path}?{urlencode(params)}", []
        while url:
            response = self._send("GET", url)
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

    def delete(self, path: str) -> None:
        response = self._send("DELETE", f"{self.base}{path}")
        if response.status_code not in (200, 204, 404):  # 404: already gone
            raise self._error(response, f"delete {path}")


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
            page = self._call("query Resource Graph", lambda: self._client("resourcegraph").resources(request))
            rows.extend(page.data or [])
            skip_token = page.skip_token
            if not skip_token:
                return rows

    # what a run left ----------------------------------------------------------------------------------
    def run_leftovers(self, run_id: str, borrowed: tuple[Borrowed, ...] = ()) -> list[Leftover]:
        """Live things of the run: tagged groups and resources (ARM's own group listing, plus Resource
        Graph's suggestions confirmed by a direct read), and directory objects named ``haymaker-<run_id>-``
        that the deployer or one of the run's borrowed identities owns."""
        found: dict[str, Leftover] = {}
        tag = f"tagName eq 'haymaker-run' and tagValue eq '{run_id.replace(chr(39), '')}'"
        groups = self._call("list resource groups", lambda: list(self._client("resources").resource_groups.list(filter=tag)))
        for g in groups:
            found[g.id.lower()] = Leftover("resource_group", g.id, g.name, GROUP_TYPE, g.location, g.name)
        for row in self.query(run_resources_query(run_id)):
            item = leftover_of_row(row)
            if item.id.lower() not in found and self.exists(item):
                found[item.id.lower()] = item
        return list(found.values()) + self._directory(run_id, borrowed, deleted=False)

    def entra_objects(self, run_id: str, via: str = "", kinds: tuple[str, ...] = DEPLOYER_KINDS) -> list[Leftover]:
        graph, out = self._graph(via), []
        for kind in kinds:
            for o in graph.list(f"/{ENTRA_KINDS[kind]}", {"$filter": app_filter(run_id), "$select": "id,displayName"}):
                out.append(Leftover(kind, o["id"], o["displayName"], via=via))
        return out

    def deleted_entra_objects(self, run_id: str, via: str = "", kinds: tuple[str, ...] = DEPLOYER_KINDS) -> list[Leftover]:
        graph, out = self._graph(via), []
        for kind in kinds:
            for o in graph.list(f"/directory/deletedItems/microsoft.graph.{DELETED_TYPES[kind]}",
                                {"$filter": app_filter(run_id), "$select": "id,displayName"}):
                out.append(Leftover(f"deleted_{kind}", o["id"], o["displayName"], via=via))
        return out

    def _directory(self, run_id: str, borrowed: tuple[Borrowed, ...], *, deleted: bool) -> list[Leftover]:
        """The deployer's objects, then each borrowed identity's; an object two of them see is listed once."""
        listing = self.deleted_entra_objects if deleted else self.entra_objects
        found = {x.id: x for x in listing(run_id)}
        for b in borrowed:
            for x in listing(run_id, b.client_id, identity_kinds(b.graph_permissions)):
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

    def soft_deleted(self, run_id: str, borrowed: tuple[Borrowed, ...] = ()) -> list[Leftover]:
        """What the directory and the subscription keep after a delete: deleted directory objects named
        for the run, and soft-deleted Key Vaults and Cognitive Services accounts of the run's groups."""
        out = self._directory(run_id, borrowed, deleted=True)
        prefix = entra_prefix(run_id).lower()
        vaults = self._call("list deleted Key Vaults", lambda: list(self._client("keyvault").vaults.list_deleted()))
        for v in vaults:
            group = _group_of(v.properties.vault_id or "")
            if group.lower().startswith(prefix) or (v.properties.tags or {}).get("haymaker-run") == run_id:
                out.append(Leftover("deleted_key_vault", v.id, v.name, "Microsoft.KeyVault/deletedVaults",
                                    v.properties.location, group))
        accounts = self._call("list deleted Cognitive Services accounts",
                              lambda: list(self._client("cognitive").deleted_accounts.list()))
        for a in accounts:
            group = _group_of(a.id or "")
            if group.lower().startswith(prefix) or (a.tags or {}).get("haymaker-run") == run_id:
                out.append(Leftover("deleted_cognitive_account", a.id, a.name, "Microsoft.CognitiveServices/accounts",
                                    a.location, group))
        return out

    def exists(self, item: Leftover) -> bool:
        """A direct read: is it still there?"""
        if item.kind == "resource_group":
            return self._call(f"read resource group {item.name}", lambda: self._client("resources").resource_groups.get(
                item.name), missing_ok=True) is not None
        if item.kind == "resource":
            version = self._api_version(item.type)
            return self._call(f"read {item.id}", lambda: self._client("resources").resources.get_by_id(
                item.id, api_version=version), missing_ok=True) is not None
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

    def delete(self, item: Leftover) -> None:
        """Delete (or purge) one item and wait for it; one that is already gone is fine."""
        if item.kind == "resource_group":
            self._call(f"delete resource group {item.name}", lambda: self._client("resources").resource_groups.begin_delete(
                item.name).result(), missing_ok=True)
        elif item.kind == "resource":
            version = self._api_version(item.type)
            self._call(f"delete {item.id}", lambda: self._client("resources").resources.begin_delete_by_id(
                item.id, api_version=version).result(), missing_ok=True)
        elif item.kind in ENTRA_KINDS:
            self._as_whoever_may(item, lambda g: g.delete(f"/{ENTRA_KINDS[item.kind]}/{item.id}"))
        elif item.kind.removeprefix("deleted_") in DELETED_TYPES:
            self._as_whoever_may(item, lambda g: g.delete(f"/directory/deletedItems/{item.id}"))
        elif item.kind == "deleted_key_vault":
            self._call(f"purge Key Vault {item.name}", lambda: self._client("keyvault").vaults.begin_purge_deleted(
                item.name, item.location).result(), missing_ok=True)
        elif item.kind == "deleted_cognitive_account":
            self._call(f"purge Cognitive Services account {item.name}",
                       lambda: self._client("cognitive").deleted_accounts.begin_purge(
                           item.location, item.resource_group, item.name).result(), missing_ok=True)
        else:
            raise AzureError(f"unknown kind of leftover {item.kind!r}")

    def _api_version(self, resource_type: str) -> str:
        """The newest stable API version ARM lists for a type (a preview only when nothing else exists)."""
        namespace, _, rtype = resource_type.partition("/")
        provider = self._call(f"read provider {namespace}", lambda: self._client("resources").providers.get(namespace))
        versions = next((t.api_versions for t in provider.resource_types or []
                         if t.resource_type.lower() == rtype.lower()), None)
        if not versions:
            raise AzureError(f"no API version known for {resource_type}: provider {namespace} does not list it")
        stable = [v for v in versions if "preview" not in v] or versions
        return max(stable)

    # Container Apps jobs ----------------------------------------------------------------------------
    def job_executions(self, resource_group: str, job_name: str) -> list:
        return self._call(f"list executions of job {job_name}", lambda: [
            e.start_time for e in self._client("jobs").jobs_executions.list(resource_group, job_name)])

    def start_job(self, resource_group: str, job_name: str) -> None:
        self._call(f"start job {job_name}", lambda: self._client("jobs").jobs.begin_start(
            resource_group, job_name).result())


def _group_of(resource_id: str) -> str:
    match = re.search(r"/resourceGroups/([^/]+)", resource_id, re.I)
    return match.group(1) if match else ""


__all__ = ["Azure", "AzureAuthError", "AzureError", "Borrowed", "Endpoints", "GraphClient", "Leftover", "app_filter",
           "identity_kinds", "orphans_query", "run_resources_query"]
