"""Thin adapters over Azure and Microsoft Graph: what the lifecycle asks of the cloud.

Each method is one call (or one paged query) and returns plain data; the decisions live in
haymaker/lifecycle.py. Clients are injected so tests can stand in for Azure at this boundary.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime

from haymaker.errors import HayMakerError

GRAPH = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class AzureError(HayMakerError):
    """An Azure or Graph call failed; the message carries the service's error text."""


@dataclass(frozen=True)
class Leftover:
    kind: str  # "resource", "resource_group" or "application"
    id: str
    name: str
    type: str = ""


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


def app_filter(run_id: str) -> str:
    return f"startswith(displayName,'haymaker-{run_id}-')"


class Azure:
    def __init__(self, *, credential, subscription_id: str, graph_client=None, resources_client=None,
                 subscriptions_client=None, jobs_client=None, http=urllib.request.urlopen):
        self.credential = credential
        self.subscription_id = subscription_id
        self._graph_client = graph_client
        self._resources = resources_client
        self._subscriptions = subscriptions_client
        self._jobs = jobs_client
        self._http = http

    @classmethod
    def connect(cls, subscription_id: str) -> "Azure":
        from azure.identity import DefaultAzureCredential

        return cls(credential=DefaultAzureCredential(), subscription_id=subscription_id)

    # clients, built on first use -----------------------------------------------------------------
    def _rg_client(self):
        if self._graph_client is None:
            from azure.mgmt.resourcegraph import ResourceGraphClient

            self._graph_client = ResourceGraphClient(self.credential)
        return self._graph_client

    def _res_client(self):
        if self._resources is None:
            from azure.mgmt.resource import ResourceManagementClient

            self._resources = ResourceManagementClient(self.credential, self.subscription_id)
        return self._resources

    def _sub_client(self):
        if self._subscriptions is None:
            from azure.mgmt.resource import SubscriptionClient

            self._subscriptions = SubscriptionClient(self.credential)
        return self._subscriptions

    def _jobs_client(self):
        if self._jobs is None:
            from azure.mgmt.appcontainers import ContainerAppsAPIClient

            self._jobs = ContainerAppsAPIClient(self.credential, self.subscription_id)
        return self._jobs

    # account ----------------------------------------------------------------------------------------
    def subscription_tenant(self) -> str:
        """Tenant id of the configured subscription as ARM reports it to this credential."""
        try:
            return self._sub_client().subscriptions.get(self.subscription_id).tenant_id
        except Exception as e:  # noqa: BLE001 - reported with the service's words
            raise AzureError(f"cannot read subscription {self.subscription_id}: {e}") from e

    # Resource Graph ---------------------------------------------------------------------------------
    def query(self, kql: str) -> list[dict]:
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        rows, skip_token = [], None
        while True:
            request = QueryRequest(subscriptions=[self.subscription_id], query=kql,
                                   options=QueryRequestOptions(skip_token=skip_token, result_format="objectArray"))
            try:
                page = self._rg_client().resources(request)
            except Exception as e:  # noqa: BLE001
                raise AzureError(f"Resource Graph query failed: {e}") from e
            rows.extend(page.data or [])
            skip_token = page.skip_token
            if not skip_token:
                return rows

    def tagged_leftovers(self, run_id: str) -> list[Leftover]:
        out = []
        for row in self.query(run_resources_query(run_id)):
            kind = "resource_group" if row["type"].lower() == "microsoft.resources/subscriptions/resourcegroups" \
                else "resource"
            out.append(Leftover(kind, row["id"], row["name"], row["type"]))
        return out

    def delete_resource_group(self, name: str) -> None:
        try:
            self._res_client().resource_groups.begin_delete(name).result()
        except Exception as e:  # noqa: BLE001
            raise AzureError(f"cannot delete resource group {name}: {e}") from e

    def delete_resource(self, resource_id: str, resource_type: str) -> None:
        try:
            client = self._res_client()
            namespace, _, rtype = resource_type.partition("/")
            provider = client.providers.get(namespace)
            versions = next((t.api_versions for t in provider.resource_types
                             if t.resource_type.lower() == rtype.lower()), None)
            if not versions:
                raise AzureError(f"no API version known for {resource_type}")
            stable = [v for v in versions if "preview" not in v] or versions
            client.resources.begin_delete_by_id(resource_id, stable[0]).result()
        except AzureError:
            raise
        except Exception as e:  # noqa: BLE001
            raise AzureError(f"cannot delete {resource_id}: {e}") from e

    # Microsoft Graph --------------------------------------------------------------------------------
    def _graph(self, method: str, path: str) -> dict:
        token = self.credential.get_token(GRAPH_SCOPE).token
        request = urllib.request.Request(f"{GRAPH}{path}", method=method,
                                         headers={"Authorization": f"Bearer {token}",
                                                  "ConsistencyLevel": "eventual"})
        try:
            with self._http(request, timeout=60) as response:
                body = response.read()
                return json.loads(body) if body else {}
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise AzureError(f"Graph {method} {path.split('?')[0]} failed: {e.code} {detail}") from e
        except urllib.error.URLError as e:
            raise AzureError(f"Graph {method} failed: {e.reason}") from e

    def run_applications(self, run_id: str) -> list[Leftover]:
        query = urllib.parse.urlencode({"$filter": app_filter(run_id), "$select": "id,displayName", "$count": "true"})
        path, apps = f"/applications?{query}", []
        while path:
            page = self._graph("GET", path)
            apps += [Leftover("application", a["id"], a["displayName"]) for a in page.get("value", [])]
            next_link = page.get("@odata.nextLink")
            path = next_link.removeprefix(GRAPH) if next_link else ""
        return apps

    def delete_application(self, object_id: str) -> None:
        self._graph("DELETE", f"/applications/{object_id}")

    # Container Apps jobs ----------------------------------------------------------------------------
    def job_executions(self, resource_group: str, job_name: str) -> list[datetime]:
        try:
            return [e.start_time for e in self._jobs_client().jobs_executions.list(resource_group, job_name)]
        except Exception as e:  # noqa: BLE001
            raise AzureError(f"cannot list executions of job {job_name}: {e}") from e

    def start_job(self, resource_group: str, job_name: str) -> None:
        try:
            self._jobs_client().jobs.begin_start(resource_group, job_name).result()
        except Exception as e:  # noqa: BLE001
            raise AzureError(f"cannot start job {job_name}: {e}") from e
