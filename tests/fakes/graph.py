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
``Group.Read.All``; deleting a group takes ``Group.ReadWrite.All`` ("Delete group", least privileged
application permission) — ``Group.Create`` does not allow it, owner or not — or a Microsoft Entra role that
manages groups (Groups Administrator) assigned to the caller at the scope of an administrative unit the group
is a member of ("Administrative units", learn.microsoft.com/entra/identity/role-based-access-control/
administrative-units; roles a person assigns: ``unit_roles``). A group is created in a unit with ``POST
/directory/administrativeUnits/{id}/members`` and a group body, which takes ``Group.Create`` and
``AdministrativeUnit.Read.All`` and Groups Administrator (or User Administrator) at that unit
(administrativeunit-post-members). Purging a deleted group is not supported for HayMaker's identities.
Anything else is 403 ``Authorization_RequestDenied``.

Entra is eventually consistent after every write, not only for ``ConsistencyLevel: eventual`` queries
("Directory data is replicated ... a read right after a write may not see it", learn.microsoft.com/graph/
best-practices-concept, and the deletedItems reference: "items deleted ... may take a few minutes to
appear"): a deleted object stays readable and listed for ``read_lag`` seconds of stand-in time, and shows up
in ``directory/deletedItems`` only ``deleted_items_lag`` seconds after its delete; a purged one stays
readable there for ``read_lag``. How long each takes is not documented: tests set both.

An object's owners (``GET /{collection}/{id}/owners``, "List owners" of application, servicePrincipal and
group) are directory objects; a service principal owner carries its ``appId``. Reading them takes what
reading the object takes (Application.Read.All; Group.Read.All or GroupMember.Read.All for groups).
"""

from __future__ import annotations

import copy
import re
import time
import uuid

from tests.fakes.graphgrants import DirectoryGrants
from tests.fakes.login import claims_of
from tests.fakes.server import Reply, Request, Service

KINDS = {"applications": "application", "servicePrincipals": "servicePrincipal", "groups": "group"}
READ_ALL = {"applications": {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"},
            "servicePrincipals": {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"},
            "groups": {"Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All"}}
READ_OWNERS = {"groups": {"GroupMember.Read.All"}}
WRITE_ALL = {"applications": {"Application.ReadWrite.All"}, "servicePrincipals": {"Application.ReadWrite.All"},
             "groups": {"Group.ReadWrite.All"}}
OWNED = {"applications": {"Application.ReadWrite.OwnedBy"}, "servicePrincipals": {"Application.ReadWrite.OwnedBy"},
         "groups": {"Group.Create"}}
DENIED = "Insufficient privileges to complete the operation."


def graph_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message,
                                    "innerError": {"date": "2026-11-21T14:00:00", "request-id": str(uuid.uuid4()),
                                                   "client-request-id": str(uuid.uuid4())}}})


def owner_body(owner: str) -> dict:
    """An owner as Graph lists it: a user (``user:<object id>``) or a service principal (its client id)."""
    if owner.startswith("user:"):
        return {"@odata.type": "#microsoft.graph.user", "id": owner.removeprefix("user:")}
    return {"@odata.type": "#microsoft.graph.servicePrincipal", "id": f"oid-of-{owner}", "appId": owner}


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
        self.route("GET", rf"/v1\.0/{collections}/(?P<id>[^/]+)/owners", self._owners)
        self.route("DELETE", rf"/v1\.0/{collections}/(?P<id>[^/]+)", self._delete)
        self.route("GET", r"/v1\.0/directory/deletedItems/microsoft\.graph\.(?P<type>application|servicePrincipal|group)",
                   self._list_deleted)
        self.route("GET", r"/v1\.0/directory/deletedItems/(?P<id>[0-9a-f-]+)", self._get_deleted)
        self.route("DELETE", r"/v1\.0/directory/deletedItems/(?P<id>[^/]+)", self._purge)
        self.route("POST", r"/v1\.0/directory/administrativeUnits/(?P<unit>[^/]+)/members", self._create_in_unit)
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
        self._fading: dict[str, tuple[str, dict, float]] = {}  # deleted, still readable: id -> (kind, object, until)
        self._purged: dict[str, tuple[dict, float]] = {}  # purged, still readable in deleted items until
        self.read_lag, self.deleted_items_lag = 2.0, 30.0  # seconds of stand-in time
        self.units: dict[str, set[str]] = {}  # administrative unit id -> its member object ids
        self.unit_roles: dict[str, set[str]] = {}  # client id -> units where it is Groups Administrator
        self.reset_grants()

    def reset(self) -> None:
        super().reset()
        self.reset_state()
        self.page_size = 100

    def now(self) -> float:
        return self.time.monotonic() if self.time is not None else time.monotonic()

    def _readable(self, kind: str) -> list[dict]:
        """What a read sees: the live objects and those deleted less than ``read_lag`` ago."""
        now = self.now()
        return [*self.objects[kind].values(),
                *(o for k, o, until in self._fading.values() if k == kind and now < until)]

    def _in_deleted_items(self) -> dict[str, dict]:
        """What deleted items show: deleted ``deleted_items_lag`` ago or more, or purged less than ``read_lag`` ago."""
        now = self.now()
        shown = {i: o for i, o in self.deleted.items() if o.get("_visible_at", 0) <= now}
        shown.update({i: o for i, (o, until) in self._purged.items() if now < until and i not in shown})
        return shown

    def add(self, kind: str, display_name: str, owner: str | None = None, unit: str | None = None, **extra) -> dict:
        """An object as if made earlier; a group in ``unit`` (an administrative unit id) when given."""
        obj = {"id": str(uuid.uuid4()), "displayName": display_name, **extra,
               "_owners": [self.default_owner if owner is None else owner]}
        if kind in ("applications", "servicePrincipals"):
            obj.setdefault("appId", str(uuid.uuid4()))
        self.objects[kind][obj["id"]] = obj
        self.kind_of[obj["id"]] = kind
        if unit:
            self.units.setdefault(unit, set()).add(obj["id"])
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
        if kind == "groups":  # Group.Create cannot delete; a unit's Groups Administrator can delete its groups
            return bool(roles & WRITE_ALL[kind]) or any(obj["id"] in self.units.get(u, set())
                                                        for u in self.unit_roles.get(app, set()))
        return bool(roles & WRITE_ALL[kind]) or (bool(roles & OWNED[kind]) and app in obj.get("_owners", []))

    def _create_in_unit(self, r: Request) -> Reply:
        app, roles = self._caller(r)
        body, unit = r.json() or {}, r.params["unit"]
        if unit not in self.units:
            return self._missing(unit)
        if body.get("@odata.type") != "#microsoft.graph.group":
            return graph_error(400, "Request_BadRequest", "Only a group can be created in an administrative unit.")
        if not (roles & {"Group.Create", "Group.ReadWrite.All"} and roles & {"AdministrativeUnit.Read.All"}
                and unit in self.unit_roles.get(app, set())):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        owners = [o.rsplit("/", 1)[-1].removeprefix("oid-of-") for o in body.get("owners@odata.bind") or []]
        obj = self.add("groups", body["displayName"], owner=owners[0] if owners else "", unit=unit,
                       mailNickname=body.get("mailNickname", ""), securityEnabled=body.get("securityEnabled", True))
        return Reply(201, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups/$entity",
                           **{k: v for k, v in obj.items() if not k.startswith("_")}})

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
        items = self._readable(kind)
        if r.headers.get("consistencylevel", "").lower() == "eventual" and self._eventual is not None:
            items = list(self._eventual[kind].values())
        return self._filtered(r, [o for o in items if self._visible(r, kind, o)], kind)

    def _get(self, r: Request) -> Reply:
        kind = r.params["kind"]
        obj = next((o for o in self._readable(kind) if o["id"] == r.params["id"]), None)
        if obj is None:
            return self._missing(r.params["id"]) if self._may_list(r, kind) else graph_error(
                403, "Authorization_RequestDenied", DENIED)
        if not self._visible(r, kind, obj):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        return Reply(200, {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{kind}/$entity",
                           **{k: v for k, v in obj.items() if not k.startswith("_")}})

    def _owners(self, r: Request) -> Reply:
        kind = r.params["kind"]
        obj = next((o for o in self._readable(kind) if o["id"] == r.params["id"]), None)
        if obj is None:
            return self._missing(r.params["id"])
        if not (self._visible(r, kind, obj) or self._caller(r)[1] & READ_OWNERS.get(kind, set())):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        return Reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
                           "value": [owner_body(o) for o in obj.get("_owners", []) if o]})

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
        now = self.now()
        self._fading[obj["id"]] = (kind, obj, now + self.read_lag)
        self.deleted[obj["id"]] = {**obj, "@odata.type": f"#microsoft.graph.{KINDS[kind]}",
                                   "deletedDateTime": "2026-11-21T14:00:00Z", "_visible_at": now + self.deleted_items_lag}

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
        items = [o for o in self._in_deleted_items().values() if self._kind_of(o) == kind and self._visible(r, kind, o)]
        return self._filtered(r, items, f"directory/deletedItems/microsoft.graph.{r.params['type']}")

    def _get_deleted(self, r: Request) -> Reply:
        obj = self._in_deleted_items().get(r.params["id"])
        if obj is None:
            return self._missing(r.params["id"])
        if not self._may_read_deleted(r, self._kind_of(obj)):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        return Reply(200, {k: v for k, v in obj.items() if not k.startswith("_")})

    def _purge(self, r: Request) -> Reply:
        obj = self._in_deleted_items().get(r.params["id"])
        if obj is None or r.params["id"] not in self.deleted:  # not shown yet, or purged already
            return self._missing(r.params["id"])
        kind = self._kind_of(obj)
        # An owner with OwnedBy purges its applications. Purging a deleted group is, for HayMaker's identities,
        # not supported: no permission any of them may hold allows it (they stay 30 days).
        allowed = self._may_delete(r, kind, obj) if kind != "groups" else False
        if not allowed:
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        self._purged[r.params["id"]] = (self.deleted.pop(r.params["id"]), self.now() + self.read_lag)
        return Reply(204)
