"""A generic Resource Manager and Microsoft Graph for the wire harness, answering whatever az asks.

Unlike tests/fakes/arm.py (the few calls the lifecycle makes, modelled one by one), this stand-in
answers every resource type the same way, following ARM's resource provider contract
(azure-resource-manager-rpc, "Resource API reference" and "Asynchronous operations"):

- PUT creates or replaces and echoes the body with ``id``, ``name``, ``type`` and
  ``properties.provisioningState: Succeeded`` (200, which every API accepts), as a long-running
  operation: an ``Azure-AsyncOperation`` header whose status answers ``Succeeded``; PATCH merges into
  what exists (404 when nothing does);
- GET answers what earlier steps of the same scenario created (404 ``ResourceNotFound`` otherwise);
  a collection is ``{"value": [...]}``; HEAD is 204 or 404;
- DELETE is 204 (done; what every generated client accepts), and removes the resource's children;
- POST to an action answers ``{}``;
- a template deployment creates the template's resources whose names are literal.

Microsoft Graph v1.0 (and beta) is answered the same way for any collection: POST creates (with
``id``; ``appId`` for applications), GET by id or with a ``$filter`` naming a value, PATCH merges,
DELETE removes, ``…/$ref`` links, actions answer ``{}``. Graph reference: "Use the Microsoft Graph API".

Where az needs something specific to one provider to get on, it is in tests/wire/taught.py with the
reason. ``assume_existing`` (for steps after one the harness could not run) answers a GET of anything
missing as if that earlier step had created it.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from tests.fakes.server import Reply, Request, Service, error
from scenarios import armpath
from tests.wire import taught

ARM_HOST = "management.azure.com"
GRAPH_HOST = "graph.microsoft.com"
SNAPSHOT = Path(__file__).resolve().parents[2] / "scenarios" / "azure_operations.json"
_POLL_RE = re.compile(r"/(operationStatuses|operationResults)/haymaker-op-(\d+)$", re.I)


@dataclass
class Recorded:
    host: str
    method: str
    path: str
    api_version: str
    status: int
    deployed: list = field(default_factory=list)  # resource types a template deployment creates
    body_keys: list = field(default_factory=list)  # the top-level keys of a Graph request body

    def to_json(self) -> dict:
        return self.__dict__.copy()


class ArmStandIn(Service):
    """Resource Manager for one subscription; ``start_scenario`` empties it down to one resource group."""

    name = "arm"

    def __init__(self, subscription_id: str, tenant_id: str, location: str):
        super().__init__()
        self.subscription_id, self.tenant_id, self.location = subscription_id, tenant_id, location
        self.state: dict[str, dict] = {}
        self.recorded: list[Recorded] = []
        self._op_ids = itertools.count(1)
        self._answers = [(m, re.compile(p, re.I), f) for m, p, f, _ in taught.ANSWERS]
        self._types = _snapshot_types()
        self.resource_group = ""
        self.assume_existing = False

    # -- scenario state ------------------------------------------------------------------------------
    def start_scenario(self, resource_group: str) -> None:
        self.resource_group = resource_group
        path = f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}"
        self.state = {path.lower(): {"id": path, "name": resource_group, "type": "Microsoft.Resources/resourceGroups",
                                     "location": self.location, "tags": {}, "managedBy": None,
                                     "properties": {"provisioningState": "Succeeded"}}}

    def save(self) -> dict:
        return copy.deepcopy(self.state)

    def restore(self, saved: dict) -> None:
        self.state = saved

    # -- requests ------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        with self._lock:
            refused = self.authorize(request)
            reply = refused or self._answer(request)
            deployed = _template_types(request) if request.method == "PUT" and reply.status < 300 else []
            self.recorded.append(Recorded(ARM_HOST, request.method, request.path,
                                          request.query.get("api-version", ""), reply.status, deployed))
            return reply

    def _answer(self, req: Request) -> Reply:
        path = req.path.rstrip("/") or "/"
        if req.method == "GET" and _POLL_RE.search(path):
            # An operation this stand-in started: done. Location polls end with 204; status polls with Succeeded.
            return Reply(204) if "operationresults" in path.lower() else Reply(200, {"status": "Succeeded"})
        for method, pattern, answer in self._answers:
            m = pattern.fullmatch(path)
            if m and method == req.method:
                return answer(self, req, m)
        p = armpath.parse(path)
        if p is None:
            return self._tenant_level(req, path)
        if p.namespace == "Microsoft.Resources" and p.types == ("subscriptions",):
            return self._subscription_level(req, p)
        if not p.types and p.tail is None:  # /subscriptions/s/providers/<namespace>
            return Reply(200, self._provider(p.namespace))
        if not p.types and p.tail and p.tail.lower() in {"register", "unregister"}:
            return Reply(200, self._provider(p.namespace))
        if p.is_resource:
            return self._resource(req, p)
        if req.method == "POST":
            if p.namespace.lower() in taught.ACCEPTED_ONLY:
                return Reply(202, None, self.lro_headers("operationResults", path))
            return Reply(200, {})
        if req.method in {"GET", "HEAD"}:
            return Reply(200, {"value": self._children(path)})
        return error(405, "MethodNotAllowed", f"{req.method} is not supported on {path} by this stand-in")

    def _resource(self, req: Request, p: armpath.ArmPath) -> Reply:
        key = p.resource_path.lower()
        have = self.state.get(key)
        implicit = taught.IMPLICIT_CHILDREN.get(p.type_path.lower())
        if have is None and req.method != "PUT" and (
                (implicit and (p.parent_path.lower() in self.state or self.assume_existing))
                or (self.assume_existing and req.method == "GET")):
            have = self.state[key] = {"id": p.resource_path, "name": p.names[-1], "type": p.type_path,
                                      "location": self.location,
                                      "properties": {**(implicit[0] if implicit else {}), "provisioningState": "Succeeded"}}
        missing = error(404, "ResourceGroupNotFound" if p.types == ("subscriptions", "resourceGroups")
                        else "ResourceNotFound", f"The Resource '{p.type_path}/{p.names[-1]}' under resource group "
                                                 f"'{self.resource_group}' was not found.")
        if req.method == "HEAD":
            return Reply(204 if have else 404)
        if req.method == "GET":
            if have and "instanceview" in req.query.get("$expand", "").lower():
                # Compute answers the instance view inline when asked for it.
                have = {**have, "properties": {**(have.get("properties") or {}), "instanceView": _INSTANCE_VIEW}}
            if have and p.namespace.lower() == "microsoft.network":
                return Reply(200, self._inline_children(p, have))
            return Reply(200, have) if have else missing
        if req.method == "DELETE":
            if not have:
                return Reply(204)
            for k in [k for k in self.state if k == key or k.startswith(key + "/")]:
                del self.state[k]
            # 204: nearly every generated client accepts it for a delete, while 200 and 202 are allowed per API
            # only (Storage and Web answer 200/204, AKS 202/204); taught.STATUS names the exceptions.
            return Reply(self._status(p, "DELETE", 204))
        if req.method == "PATCH":
            if not have:
                return missing
            body = _merge(have, _without_nulls(_json(req)))  # ARM leaves what a PATCH sends as null
        elif req.method == "PUT":
            body = _json(req)
            if not isinstance(body, dict):
                body = {}
            self._deploy_template(req, body)
        else:  # POST to the resource itself
            return Reply(200, {})
        body = {**body, "id": p.resource_path, "name": p.names[-1], "type": p.type_path}
        fill = taught.DEFAULTS.get(p.type_path.lower())
        top, props = fill[0](p.names[-1]) if fill else ({}, {})
        props = json.loads(json.dumps(props).replace("{subscription}", self.subscription_id)
                           .replace("{group}", self.resource_group))
        body = {**top, **_without_nulls(body)}
        body["properties"] = {**props, **(body.get("properties") or {}), "provisioningState": "Succeeded"}
        normalise = taught.NORMALISE.get(p.type_path.lower())
        if normalise:
            body = normalise[0](body)
        if len(p.types) == 1 or p.namespace == "Microsoft.Resources":
            body.setdefault("location", self.location)
        self.state[key] = body
        for path, other in taught.also_created(p.type_path, _json(req) if req.method == "PUT" else {}, body):
            self.state.setdefault(path.lower(), {"id": path, "location": self.location, **other})
        for child_type, name, child in taught.child_resources_of(p.type_path, body):
            child_path = f"{p.resource_path}/{child_type}/{name}"
            self.state[child_path.lower()] = {**child, "id": child_path, "name": name,
                                              "type": f"{p.type_path}/{child_type}",
                                              "properties": {**(child.get("properties") or {}),
                                                             "provisioningState": "Succeeded"}}
        if p.namespace.lower() in taught.ACCEPTED_ONLY:
            return Reply(202, None, {**self.lro_headers("operationStatuses", p.resource_path),
                                     "Location": f"https://{ARM_HOST}{p.resource_path}"})
        # 200 for a create too: nearly every generated client accepts it, while 201 or 202 is allowed per API
        # only (Storage's Create answers 200/202, Network's 200/201); taught.STATUS names the exceptions.
        return Reply(self._status(p, req.method, 200), body, self.lro_headers("operationStatuses", p.resource_path))

    @staticmethod
    def _status(p: armpath.ArmPath, method: str, usual: int) -> int:
        return taught.STATUS.get((p.type_path.lower(), method), (usual, ""))[0]

    def _inline_children(self, p: armpath.ArmPath, body: dict) -> dict:
        """Network answers a resource with its child resources inline (a VNet's subnets, an NSG's rules)."""
        body = copy.deepcopy(body)
        props = body.setdefault("properties", {})
        base = p.resource_path.lower()
        for k, v in self.state.items():
            rest = k[len(base) + 1:].split("/") if k.startswith(base + "/") else []
            if len(rest) == 2:
                child = v["id"].split("/")[-2]
                if not any(c.get("id", "").lower() == k for c in props.get(child) or []):
                    props.setdefault(child, []).append(v)
        for child in taught.INLINE_LISTS.get(p.type_path.lower(), ()):
            props.setdefault(child, [])
        return body

    def lro_headers(self, kind: str, path: str) -> dict:
        """Where to poll a long-running operation: ``operationStatuses`` (Azure-AsyncOperation, for PUT and
        PATCH) or ``operationResults`` (Location, for POST and DELETE)."""
        p = armpath.parse(path)
        url = (f"https://{ARM_HOST}/subscriptions/{self.subscription_id}/providers/{p.namespace}/locations/"
               f"{self.location}/{kind}/haymaker-op-{next(self._op_ids)}?api-version=2020-01-01")
        header = "Azure-AsyncOperation" if kind == "operationStatuses" else "Location"
        # ARM says how long to wait before polling; the harness's clock does not wait (tests/wire/run_steps.py).
        return {header: url, "Retry-After": "1"}

    def _children(self, path: str) -> list[dict]:
        base = path.lower()
        depth = base.count("/") + 1
        if base.endswith("/resources") and armpath.parse(path).types == ("subscriptions", "resourceGroups"):
            rg = base.rsplit("/", 1)[0]
            return [v for k, v in self.state.items() if k.startswith(rg + "/providers/") and k.count("/") == rg.count("/") + 4]
        return [v for k, v in self.state.items() if k.startswith(base + "/") and k.count("/") == depth]

    def _deploy_template(self, req: Request, body: dict) -> None:
        """A deployment's template resources with literal names exist once it succeeds."""
        template = (body.get("properties") or {}).get("template") or {}
        scope = f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
        for rtype, name, props in _template_resources(template):
            if "[" in name or "[" in rtype:
                continue
            ns, *types = rtype.split("/")
            names = name.split("/")
            if len(names) != len(types):
                continue
            path = scope + f"/providers/{ns}/" + "/".join(f"{t}/{n}" for t, n in zip(types, names))
            self.state[path.lower()] = {"id": path, "name": names[-1], "type": rtype, "location": self.location,
                                        **props, "properties": {**(props.get("properties") or {}),
                                                                "provisioningState": "Succeeded"}}

    def _tenant_level(self, req: Request, path: str) -> Reply:
        if path.lower() == "/subscriptions":
            return Reply(200, {"value": [self._subscription()]})
        if path.lower() == "/tenants":
            return Reply(200, {"value": [{"id": f"/tenants/{self.tenant_id}", "tenantId": self.tenant_id}]})
        return error(404, "NotFound", f"{req.method} {path} is not known to this stand-in")

    def _subscription(self) -> dict:
        return {"id": f"/subscriptions/{self.subscription_id}", "subscriptionId": self.subscription_id,
                "tenantId": self.tenant_id, "displayName": "haymaker-wire", "state": "Enabled"}

    def _subscription_level(self, req: Request, p: armpath.ArmPath) -> Reply:
        if p.tail is None:
            return Reply(200, self._subscription())
        if p.tail.lower() == "providers":
            return Reply(200, {"value": [self._provider(ns) for ns in sorted(self._types)]})
        if p.tail.lower() == "locations":
            return Reply(200, {"value": [{"name": self.location, "displayName": self.location,
                                          "id": f"/subscriptions/{self.subscription_id}/locations/{self.location}"}]})
        if req.method in {"GET", "HEAD"}:
            return Reply(200, {"value": self._children(req.path.rstrip("/"))})
        return Reply(200, {})

    def _provider(self, namespace: str) -> dict:
        types = self._types.get(namespace.lower(), set()) | set(taught.PROVIDER_TYPES.get(namespace.lower(), ()))
        location = taught.LOCATION_NAMES.get(self.location, self.location)
        return {"id": f"/subscriptions/{self.subscription_id}/providers/{namespace}", "namespace": namespace,
                "registrationState": "Registered",
                "resourceTypes": [{"resourceType": t, "locations": [location],
                                   "apiVersions": ["2024-01-01", "2023-01-01"]} for t in sorted(types)]}


_INSTANCE_VIEW = {"statuses": [{"code": "ProvisioningState/succeeded", "level": "Info"},
                              {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}]}


def _json(req: Request):
    try:
        return req.json()
    except ValueError:
        return {}


def _without_nulls(value):
    """ARM omits what was not set: a null sent is not answered back."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _merge(old: dict, patch) -> dict:
    out = copy.deepcopy(old)
    for k, v in (patch or {}).items() if isinstance(patch, dict) else ():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _template_resources(template: dict, parent_type: str = "", parent_name: str = ""):
    resources = template.get("resources") or []
    if isinstance(resources, dict):  # languageVersion 2.0: symbolic names
        resources = list(resources.values())
    for r in resources:
        if not isinstance(r, dict) or r.get("existing"):
            continue
        rtype, name = str(r.get("type", "")), str(r.get("name", ""))
        if parent_type and "/" not in rtype.split("/", 1)[-1] and not rtype.lower().startswith("microsoft."):
            rtype, name = f"{parent_type}/{rtype}", f"{parent_name}/{name}"
        yield rtype, name, {k: v for k, v in r.items() if k in {"properties", "sku", "kind", "tags", "zones"}}
        yield from _template_resources(r, rtype, name)
        if rtype.lower() == "microsoft.resources/deployments":
            yield from _template_resources((r.get("properties") or {}).get("template") or {})


def _template_types(req: Request) -> list[str]:
    """Resource types a template deployment's PUT creates: ARM logs each one's write for the caller."""
    p = armpath.parse(req.path)
    if p is None or p.type_path.lower() != "microsoft.resources/deployments" or not p.is_resource:
        return []
    body = _json(req)
    template = ((body or {}).get("properties") or {}).get("template") or {} if isinstance(body, dict) else {}
    return sorted({t for t, _, _ in _template_resources(template) if t and "[" not in t})


def _snapshot_types() -> dict[str, set[str]]:
    """Resource types per namespace, read off the published operations (for provider queries)."""
    doc = json.loads(SNAPSHOT.read_text())
    out: dict[str, set[str]] = {}
    for ns, ops in doc["operations"].items():
        for op in ops:
            parts = op.split("/")[1:-1]
            if parts and parts[-1] != "action" and len(parts) >= 1:
                out.setdefault(ns.lower(), set()).add("/".join(parts))
    return out


# --- Microsoft Graph ------------------------------------------------------------------------------------

_MULTI = ("identity/conditionalAccess/policies", "identity/conditionalAccess/namedLocations",
          "policies/authenticationStrengthPolicies", "policies/authorizationPolicy",
          "policies/identitySecurityDefaultsEnforcementPolicy")
_NEW_IN_UNIT = re.compile(r"^directory/administrativeUnits/(?P<unit>[^/]+)/members$", re.I)
_ALT_KEY = re.compile(r"^(?P<coll>[A-Za-z]+)\((?P<key>[A-Za-z]+)='(?P<value>[^']*)'\)$")


class GraphStandIn(Service):
    name = "graph"

    def __init__(self):
        super().__init__()
        self.objects: dict[str, dict[str, dict]] = {}  # collection -> id -> object
        self.links: dict[tuple[str, str], list[str]] = {}  # (object id, navigation) -> ids
        self.recorded: list[Recorded] = []

    def start_scenario(self) -> None:
        self.objects, self.links = {}, {}

    def save(self):
        return copy.deepcopy((self.objects, self.links))

    def restore(self, saved) -> None:
        self.objects, self.links = saved

    def handle(self, request: Request) -> Reply:
        with self._lock:
            reply = self.authorize(request) or self._answer(request)
            body = _json(request) if request.body else None
            self.recorded.append(Recorded(GRAPH_HOST, request.method, request.path, "", reply.status,
                                          body_keys=sorted(body) if isinstance(body, dict) else []))
            return reply

    def _answer(self, req: Request) -> Reply:
        parts = [unquote(p) for p in req.path.split("/") if p][1:]  # without the version
        if not parts:
            return _graph_error(404, "Request_ResourceNotFound", "no resource")
        text = "/".join(parts)
        unit = _NEW_IN_UNIT.match(text)
        if unit and req.method == "POST":
            # "Add a member" to an administrative unit with a whole group as the body creates the group in
            # the unit (Graph reference: administrativeunit-post-members, "Create a new group").
            body = _json(req) or {}
            if body.get("@odata.type") != "#microsoft.graph.group":
                return _graph_error(400, "Request_BadRequest", "Only a group can be created in an administrative unit.")
            reply = self._create("groups", self.objects.setdefault("groups", {}), body)
            self.links.setdefault((unit["unit"].lower(), "members"), []).append(reply.body["id"].lower())
            return reply
        for multi in _MULTI:
            if text.lower().startswith(multi.lower()):
                coll, rest = multi, parts[multi.count("/") + 1:]
                break
        else:
            coll, rest = parts[0], parts[1:]
            alt = _ALT_KEY.match(coll)
            if alt:  # applications(appId='…')
                coll = alt["coll"]
                found = self._find(coll, alt["key"], alt["value"])
                if found is None:
                    return _graph_error(404, "Request_ResourceNotFound", f"{alt['value']} does not exist")
                rest = [found["id"], *rest]
        objects = self.objects.setdefault(coll.lower(), {})
        if not rest:
            if req.method == "POST":
                return self._create(coll, objects, _json(req) or {})
            if req.method == "GET":
                return Reply(200, {"@odata.context": f"https://{GRAPH_HOST}/v1.0/$metadata#{coll}",
                                   "value": _filtered(list(objects.values()), req.query.get("$filter", ""))})
            if req.method == "PATCH":  # singletons such as policies/authorizationPolicy
                return Reply(204)
            return _graph_error(405, "Request_BadRequest", f"{req.method} on a collection")
        oid, rest = rest[0], rest[1:]
        obj = objects.get(oid.lower()) or (self._find_any(oid) if coll.lower() == "directoryobjects" else None)
        if obj is None:
            return _graph_error(404, "Request_ResourceNotFound",
                                f"Resource '{oid}' does not exist or one of its queried reference-property objects "
                                "are not present.")
        if not rest:
            if req.method == "GET":
                return Reply(200, obj)
            if req.method == "PATCH":
                obj.update(_json(req) or {})
                return Reply(204)
            if req.method == "DELETE":
                del objects[oid.lower()]
                return Reply(204)
            return _graph_error(405, "Request_BadRequest", f"{req.method} on an object")
        nav = rest[0]
        link = (oid.lower(), nav.lower())
        if rest[-1] == "$ref":
            if req.method == "POST":
                ref = str((_json(req) or {}).get("@odata.id", "")).rstrip("/").rsplit("/", 1)[-1]
                self.links.setdefault(link, []).append(ref.lower())
                return Reply(204)
            if req.method == "DELETE":
                if len(rest) == 3 and rest[1].lower() in self.links.get(link, []):
                    self.links[link].remove(rest[1].lower())
                    return Reply(204)
                return _graph_error(404, "Request_ResourceNotFound", "no such link")
        if req.method == "GET" and len(rest) == 1:
            linked = [o for i in self.links.get(link, []) if (o := self._find_any(i))]
            children = list(self.objects.get(f"{oid.lower()}/{nav.lower()}", {}).values())
            return Reply(200, {"value": _filtered(linked + children, req.query.get("$filter", ""))})
        if req.method == "POST" and len(rest) == 1:
            if nav.lower() in {"addpassword", "addkey"}:
                return Reply(200, {"keyId": str(uuid.uuid4()), "secretText": "stand-in-secret-not-real",
                                   "displayName": (_json(req) or {}).get("passwordCredential", {}).get("displayName"),
                                   "endDateTime": "2099-01-01T00:00:00Z", "startDateTime": "2026-01-01T00:00:00Z"})
            if nav.lower() in {"removepassword", "removekey", "restore", "checkmembergroups", "getmembergroups"}:
                return Reply(200, {"value": []}) if nav.lower().startswith(("check", "get")) else Reply(204)
            children = self.objects.setdefault(f"{oid.lower()}/{nav.lower()}", {})
            return self._create(nav, children, _json(req) or {})
        if len(rest) == 2:
            children = self.objects.setdefault(f"{oid.lower()}/{nav.lower()}", {})
            # federatedIdentityCredentials are also addressed by name
            child = children.get(rest[1].lower()) or next(
                (c for c in children.values() if str(c.get("name", "")).lower() == rest[1].lower()), None)
            if child is None:
                return _graph_error(404, "Request_ResourceNotFound", f"{rest[1]} does not exist")
            if req.method == "DELETE":
                del children[child["id"].lower()]
                return Reply(204)
            if req.method == "PATCH":
                child.update(_json(req) or {})
                return Reply(204)
            return Reply(200, child)
        return Reply(200, {})

    def _create(self, coll: str, objects: dict, body: dict) -> Reply:
        obj = {**body, "id": str(uuid.uuid4())}
        if coll.lower() == "applications":
            obj.setdefault("appId", str(uuid.uuid4()))
            obj.setdefault("requiredResourceAccess", [])
            obj.setdefault("web", {"redirectUris": [], "implicitGrantSettings": {}})
            obj.setdefault("api", {"oauth2PermissionScopes": []})
            obj.setdefault("passwordCredentials", [])
            obj.setdefault("keyCredentials", [])
            obj.setdefault("identifierUris", obj.get("identifierUris") or [])
        if coll.lower() == "serviceprincipals":
            app = self._find("applications", "appId", str(body.get("appId", "")))
            obj.setdefault("appDisplayName", (app or {}).get("displayName"))
            obj.setdefault("displayName", (app or {}).get("displayName"))
            obj.setdefault("servicePrincipalNames", [body.get("appId")] + list((app or {}).get("identifierUris") or []))
        for ref in body.get("owners@odata.bind") or []:
            self.links.setdefault((obj["id"], "owners"), []).append(str(ref).rsplit("/", 1)[-1].lower())
        for ref in body.get("members@odata.bind") or []:
            self.links.setdefault((obj["id"], "members"), []).append(str(ref).rsplit("/", 1)[-1].lower())
        obj = {k: v for k, v in obj.items() if not k.endswith("@odata.bind")}
        objects[obj["id"].lower()] = obj
        return Reply(201, obj)

    def _find(self, coll: str, key: str, value: str) -> dict | None:
        for obj in self.objects.get(coll.lower(), {}).values():
            if str(obj.get(key, "")).lower() == value.lower():
                return obj
        return None

    def _find_any(self, oid: str) -> dict | None:
        for coll in self.objects.values():
            if oid.lower() in coll:
                return coll[oid.lower()]
        return None


def _filtered(items: list[dict], query: str) -> list[dict]:
    """Objects with a field (or list element) equal to a quoted value of ``$filter`` (prefix for startswith)."""
    values = re.findall(r"'((?:[^']|'')*)'", query)
    if not values:
        return items
    prefix = query.strip().lower().startswith("startswith")

    def fields(o):
        for v in o.values():
            yield from (v if isinstance(v, list) else [v])

    def hit(o):
        return any(isinstance(f, str) and any((f.lower().startswith(x.lower()) if prefix else f.lower() == x.lower())
                                              for x in values) for f in fields(o))
    return [o for o in items if hit(o)]


def _graph_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message,
                                    "innerError": {"request-id": str(uuid.uuid4()), "date": "2026-01-01T00:00:00"}}})

