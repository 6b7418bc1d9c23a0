"""Microsoft Graph v1.0, as teardown meets it: applications, service principals and groups, and the
directory's deleted items (soft-deleted objects stay there 30 days and count against the creator's
quota until purged).

Bodies and errors follow the Graph reference: collections are ``{"@odata.context", "value",
"@odata.nextLink"}``; a missing object is 404 ``Request_ResourceNotFound``; ``$filter`` supports
``startswith(displayName,'…')`` as a default (consistent) query. A request that asks for *advanced
query* mode (``ConsistencyLevel: eventual``) is answered from an eventually consistent index: here,
one that has not seen the latest deletes yet — the opposite of what a delete-then-re-list check needs.
"""

from __future__ import annotations

import copy
import re
import uuid

from tests.fakes.server import Reply, Request, Service

KINDS = {"applications": "application", "servicePrincipals": "servicePrincipal", "groups": "group"}


def graph_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message,
                                    "innerError": {"date": "2026-11-21T14:00:00", "request-id": str(uuid.uuid4()),
                                                   "client-request-id": str(uuid.uuid4())}}})


class FakeGraph(Service):
    name = "graph"

    def __init__(self):
        super().__init__()
        self.page_size = 100
        self.reset_state()
        collections = "(?P<kind>applications|servicePrincipals|groups)"
        self.route("GET", rf"/v1\.0/{collections}", self._list)
        self.route("GET", rf"/v1\.0/{collections}/(?P<id>[^/]+)", self._get)
        self.route("DELETE", rf"/v1\.0/{collections}/(?P<id>[^/]+)", self._delete)
        self.route("GET", r"/v1\.0/directory/deletedItems/microsoft\.graph\.(?P<type>application|servicePrincipal|group)",
                   self._list_deleted)
        self.route("GET", r"/v1\.0/directory/deletedItems/(?P<id>[0-9a-f-]+)", self._get_deleted)
        self.route("DELETE", r"/v1\.0/directory/deletedItems/(?P<id>[^/]+)", self._purge)

    def authorize(self, request: Request) -> Reply | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        return None

    def reset_state(self) -> None:
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
        self.deleted: dict[str, dict] = {}
        self._eventual: dict[str, dict[str, dict]] | None = None  # the advanced-query index, when stale

    def reset(self) -> None:
        super().reset()
        self.reset_state()
        self.page_size = 100

    def add(self, kind: str, display_name: str, **extra) -> dict:
        obj = {"id": str(uuid.uuid4()), "displayName": display_name, **extra}
        if kind in ("applications", "servicePrincipals"):
            obj.setdefault("appId", str(uuid.uuid4()))
        self.objects[kind][obj["id"]] = obj
        return obj

    def add_deleted(self, kind: str, display_name: str) -> dict:
        obj = {"id": str(uuid.uuid4()), "displayName": display_name, "@odata.type": f"#microsoft.graph.{KINDS[kind]}",
               "deletedDateTime": "2026-11-21T13:50:00Z"}
        self.deleted[obj["id"]] = obj
        return obj

    def remove(self, kind: str, object_id: str) -> None:
        """What a stack destroy does to an Entra object: it goes to the deleted items."""
        self._soft_delete(kind, self.objects[kind].pop(object_id))

    def live_names(self) -> list[str]:
        return sorted(o["displayName"] for objs in self.objects.values() for o in objs.values())

    # handlers -------------------------------------------------------------------------------------------
    def _filtered(self, r: Request, items: list[dict], collection: str) -> Reply:
        flt = r.query.get("$filter", "")
        match = re.fullmatch(r"startswith\(displayName,\s*'([^']*)'\)", flt)
        if flt and not match:
            return graph_error(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause: {flt}")
        if "$count" in r.query and r.headers.get("consistencylevel", "").lower() != "eventual":
            return graph_error(400, "Request_BadRequest",
                               "$count is not currently supported without the ConsistencyLevel: eventual header.")
        if match:
            items = [o for o in items if o["displayName"].startswith(match.group(1))]
        items = sorted(items, key=lambda o: o["displayName"])
        start = int(r.query.get("$skiptoken") or 0)
        page = items[start:start + self.page_size]
        select = [f for f in r.query.get("$select", "").split(",") if f]
        body = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{collection}",
                "value": [{k: v for k, v in o.items() if not select or k in select or k == "@odata.type"} for o in page]}
        if start + self.page_size < len(items):
            body["@odata.nextLink"] = (f"{self.base_url}{r.path}?$skiptoken={start + self.page_size}"
                                       + (f"&$filter={flt}" if flt else "")
                                       + (f"&$select={r.query['$select']}" if select else ""))
        return Reply(200, body)

    def _list(self, r: Request) -> Reply:
        source = self.objects
        if r.headers.get("consistencylevel", "").lower() == "eventual" and self._eventual is not None:
            source = self._eventual
        return self._filtered(r, list(source[r.params["kind"]].values()), r.params["kind"])

    def _get(self, r: Request) -> Reply:
        obj = self.objects[r.params["kind"]].get(r.params["id"])
        if obj is None:
            return self._missing(r.params["id"])
        return Reply(200, {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{r.params['kind']}/$entity", **obj})

    @staticmethod
    def _missing(object_id: str) -> Reply:
        return graph_error(404, "Request_ResourceNotFound",
                           f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
                           "are not present.")

    def _delete(self, r: Request) -> Reply:
        kind = r.params["kind"]
        if self._eventual is None:  # the index catches up with nothing until the next test says so
            self._eventual = copy.deepcopy(self.objects)
        obj = self.objects[kind].pop(r.params["id"], None)
        if obj is None:
            return self._missing(r.params["id"])
        self._soft_delete(kind, obj)
        if kind == "applications":  # Entra deletes an application's service principal with it
            for sp in [s for s in self.objects["servicePrincipals"].values() if s.get("appId") == obj.get("appId")]:
                self._soft_delete("servicePrincipals", self.objects["servicePrincipals"].pop(sp["id"]))
        return Reply(204)

    def _soft_delete(self, kind: str, obj: dict) -> None:
        self.deleted[obj["id"]] = {**obj, "@odata.type": f"#microsoft.graph.{KINDS[kind]}",
                                   "deletedDateTime": "2026-11-21T14:00:00Z"}

    def _list_deleted(self, r: Request) -> Reply:
        items = [o for o in self.deleted.values() if o["@odata.type"] == f"#microsoft.graph.{r.params['type']}"]
        return self._filtered(r, items, f"directory/deletedItems/microsoft.graph.{r.params['type']}")

    def _get_deleted(self, r: Request) -> Reply:
        obj = self.deleted.get(r.params["id"])
        return Reply(200, obj) if obj else self._missing(r.params["id"])

    def _purge(self, r: Request) -> Reply:
        if self.deleted.pop(r.params["id"], None) is None:
            return self._missing(r.params["id"])
        return Reply(204)
