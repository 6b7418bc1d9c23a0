"""Microsoft Graph v1.0, as teardown meets it: applications, service principals and groups, and the
directory's deleted items (soft-deleted objects stay there 30 days and count against the creator's
quota until purged).

Bodies and errors follow the Graph reference: collections are ``{"@odata.context", "value",
"@odata.nextLink"}``; a missing object is 404 ``Request_ResourceNotFound``; ``$filter`` supports
``startswith(displayName,'…')`` as a default (consistent) query. A request that asks for *advanced
query* mode (``ConsistencyLevel: eventual``) is answered from an eventually consistent index: here,
one that has not seen the latest deletes yet — the opposite of what a delete-then-re-list check needs.

Permissions are enforced from the caller's token (its ``appid`` and ``roles`` claims), as the Graph
permissions reference describes them for application permissions: ``Application.ReadWrite.OwnedBy``
sees and deletes only the applications and service principals the caller owns (and purges them from
deleted items, which only ``Application.Read.All`` lists and reads); groups are listed with
``Group.Read.All`` and deleted by their owner (or ``Group.ReadWrite.All``); a deleted group can be
purged only with ``Group.ReadWrite.All``. Anything else is 403 ``Authorization_RequestDenied``.
"""

from __future__ import annotations

import copy
import re
import uuid

from tests.fakes.graphgrants import DirectoryGrants
from tests.fakes.login import claims_of
from tests.fakes.server import Reply, Request, Service

KINDS = {"applications": "application", "servicePrincipals": "servicePrincipal", "groups": "group"}
READ_ALL = {"applications": {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"},
            "servicePrincipals": {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"},
            "groups": {"Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All"}}
WRITE_ALL = {"applications": {"Application.ReadWrite.All"}, "servicePrincipals": {"Application.ReadWrite.All"},
             "groups": {"Group.ReadWrite.All"}}
OWNED = {"applications": {"Application.ReadWrite.OwnedBy"}, "servicePrincipals": {"Application.ReadWrite.OwnedBy"},
         "groups": {"Group.Create"}}
DENIED = "Insufficient privileges to complete the operation."


def graph_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message,
                                    "innerError": {"date": "2026-11-21T14:00:00", "request-id": str(uuid.uuid4()),
                                                   "client-request-id": str(uuid.uuid4())}}})


class FakeGraph(DirectoryGrants, Service):
    name = "graph"

    def __init__(self):
        super().__init__()
        self.page_size = 100
        self.default_owner = ""  # the client id that owns what a test adds without saying
        self.reset_state()
        collections = "(?P<kind>applications|servicePrincipals|groups)"
        self.route("GET", rf"/v1\.0/{collections}", self._list)
        self.route("GET", rf"/v1\.0/{collections}/(?P<id>[^/]+)", self._get)
        self.route("DELETE", rf"/v1\.0/{collections}/(?P<id>[^/]+)", self._delete)
        self.route("GET", r"/v1\.0/directory/deletedItems/microsoft\.graph\.(?P<type>application|servicePrincipal|group)",
                   self._list_deleted)
        self.route("GET", r"/v1\.0/directory/deletedItems/(?P<id>[0-9a-f-]+)", self._get_deleted)
        self.route("DELETE", r"/v1\.0/directory/deletedItems/(?P<id>[^/]+)", self._purge)
        self.route_grants()  # read-only: what a person granted (tests/fakes/graphgrants.py)

    def authorize(self, request: Request) -> Reply | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        return None

    def reset_state(self) -> None:
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
        self.deleted: dict[str, dict] = {}
        self.kind_of: dict[str, str] = {}  # every object id ever seen -> its collection, for the permission table
        self._eventual: dict[str, dict[str, dict]] | None = None  # the advanced-query index, when stale
        self.reset_grants()

    def reset(self) -> None:
        super().reset()
        self.reset_state()
        self.page_size = 100

    def add(self, kind: str, display_name: str, owner: str | None = None, **extra) -> dict:
        obj = {"id": str(uuid.uuid4()), "displayName": display_name, **extra,
               "_owners": [self.default_owner if owner is None else owner]}
        if kind in ("applications", "servicePrincipals"):
            obj.setdefault("appId", str(uuid.uuid4()))
        self.objects[kind][obj["id"]] = obj
        self.kind_of[obj["id"]] = kind
        return obj

    def add_deleted(self, kind: str, display_name: str, owner: str | None = None) -> dict:
        obj = {"id": str(uuid.uuid4()), "displayName": display_name, "@odata.type": f"#microsoft.graph.{KINDS[kind]}",
               "deletedDateTime": "2026-11-21T13:50:00Z", "_owners": [self.default_owner if owner is None else owner]}
        self.deleted[obj["id"]] = obj
        self.kind_of[obj["id"]] = kind
        return obj

    # who may do what ---------------------------------------------------------------------------------------
    @staticmethod
    def _caller(r: Request) -> tuple[str, set[str]]:
        claims = claims_of(r.headers["authorization"].split(" ", 1)[1])
        return claims.get("appid", ""), set(claims.get("roles") or [])

    def _visible(self, r: Request, kind: str, obj: dict) -> bool:
        app, roles = self._caller(r)
        return bool(roles & READ_ALL[kind]) or (bool(roles & OWNED[kind]) and app in obj.get("_owners", [])
                                                and kind != "groups")

    def _may_list(self, r: Request, kind: str) -> bool:
        roles = self._caller(r)[1]
        return bool(roles & (READ_ALL[kind] | (OWNED[kind] if kind != "groups" else set())))

    def _may_delete(self, r: Request, kind: str, obj: dict) -> bool:
        app, roles = self._caller(r)
        return bool(roles & WRITE_ALL[kind]) or (bool(roles & OWNED[kind]) and app in obj.get("_owners", []))

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
                "value": [{k: v for k, v in o.items() if not k.startswith("_") and (not select or k in select
                                                                                  or k == "@odata.type")}
                          for o in page]}
        if start + self.page_size < len(items):
            body["@odata.nextLink"] = (f"{self.base_url}{r.path}?$skiptoken={start + self.page_size}"
                                       + (f"&$filter={flt}" if flt else "")
                                       + (f"&$select={r.query['$select']}" if select else ""))
        return Reply(200, body)

    def _list(self, r: Request) -> Reply:
        kind = r.params["kind"]
        if not self._may_list(r, kind):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        source = self.objects
        if r.headers.get("consistencylevel", "").lower() == "eventual" and self._eventual is not None:
            source = self._eventual
        return self._filtered(r, [o for o in source[kind].values() if self._visible(r, kind, o)], kind)

    def _get(self, r: Request) -> Reply:
        kind = r.params["kind"]
        obj = self.objects[kind].get(r.params["id"])
        if obj is None:
            return self._missing(r.params["id"]) if self._may_list(r, kind) else graph_error(
                403, "Authorization_RequestDenied", DENIED)
        if not self._visible(r, kind, obj):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        return Reply(200, {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{kind}/$entity",
                           **{k: v for k, v in obj.items() if not k.startswith("_")}})

    @staticmethod
    def _missing(object_id: str) -> Reply:
        return graph_error(404, "Request_ResourceNotFound",
                           f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
                           "are not present.")

    def _delete(self, r: Request) -> Reply:
        kind = r.params["kind"]
        if self._eventual is None:  # the index catches up with nothing until the next test says so
            self._eventual = copy.deepcopy(self.objects)
        obj = self.objects[kind].get(r.params["id"])
        if obj is None:
            return self._missing(r.params["id"])
        if not self._may_delete(r, kind, obj):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        self._soft_delete(kind, self.objects[kind].pop(r.params["id"]))
        if kind == "applications":  # Entra deletes an application's service principal with it
            for sp in [s for s in self.objects["servicePrincipals"].values() if s.get("appId") == obj.get("appId")]:
                self._soft_delete("servicePrincipals", self.objects["servicePrincipals"].pop(sp["id"]))
        return Reply(204)

    def _soft_delete(self, kind: str, obj: dict) -> None:
        self.deleted[obj["id"]] = {**obj, "@odata.type": f"#microsoft.graph.{KINDS[kind]}",
                                   "deletedDateTime": "2026-11-21T14:00:00Z"}

    @staticmethod
    def _kind_of(obj: dict) -> str:
        odata = obj["@odata.type"].rsplit(".", 1)[-1]
        return next(k for k, v in KINDS.items() if v == odata)

    def _may_read_deleted(self, r: Request, kind: str) -> bool:
        """Listing or reading deleted items takes a read-all permission (Group.Read.All, Application.Read.All):
        the reference names no owned-by form for these reads, though an owner may purge (below)."""
        return bool(self._caller(r)[1] & READ_ALL[kind])

    def _list_deleted(self, r: Request) -> Reply:
        kind = next(k for k, v in KINDS.items() if v == r.params["type"])
        if not self._may_read_deleted(r, kind):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        items = [o for o in self.deleted.values() if self._kind_of(o) == kind and self._visible(r, kind, o)]
        return self._filtered(r, items, f"directory/deletedItems/microsoft.graph.{r.params['type']}")

    def _get_deleted(self, r: Request) -> Reply:
        obj = self.deleted.get(r.params["id"])
        if obj is None:
            return self._missing(r.params["id"])
        if not self._may_read_deleted(r, self._kind_of(obj)):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        return Reply(200, {k: v for k, v in obj.items() if not k.startswith("_")})

    def _purge(self, r: Request) -> Reply:
        obj = self.deleted.get(r.params["id"])
        if obj is None:
            return self._missing(r.params["id"])
        kind = self._kind_of(obj)
        # Only a *ReadWrite.All permission purges a group; an owner with OwnedBy purges its applications.
        allowed = self._may_delete(r, kind, obj) if kind != "groups" else bool(self._caller(r)[1] & WRITE_ALL[kind])
        if not allowed:
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        del self.deleted[r.params["id"]]
        return Reply(204)
