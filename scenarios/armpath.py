"""Read a Resource Manager request path the way ARM authorises it: which operation a request is.

ARM names the operation of a request after the resource type its path addresses and the HTTP verb
(Azure RBAC, "Azure resource provider operations"; the Activity Log's ``operationName``):

    PUT, PATCH  /…/providers/Microsoft.Network/virtualNetworks/v/subnets/s   Microsoft.Network/virtualNetworks/subnets/write
    DELETE      (same)                                                    …/subnets/delete
    GET, HEAD   (same, or the collection …/subnets)                       …/subnets/read
    POST        /…/providers/Microsoft.Storage/storageAccounts/a/listKeys Microsoft.Storage/storageAccounts/listKeys/action

The last ``/providers/<namespace>`` of a path names the provider (an extension resource such as
``…/sites/app/providers/Microsoft.Insights/diagnosticSettings/x`` is Microsoft.Insights'). Paths
without a provider are Microsoft.Resources' own: ``/subscriptions/s/resourceGroups/g`` is
``Microsoft.Resources/subscriptions/resourceGroups``. Standard library only: the stand-in (in the
Azure CLI's Python) and the harness (in the project's) both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_METHODS = {"GET", "HEAD"}


@dataclass(frozen=True)
class ArmPath:
    namespace: str  # Microsoft.Network
    types: tuple[str, ...]  # ("virtualNetworks", "subnets")
    names: tuple[str, ...]  # ("v", "s"): one per type when the path addresses a resource
    tail: str | None  # a last segment after the names: a collection (GET) or an action (POST)
    resource_path: str  # the path up to and including the last name (the resource addressed)
    parent_path: str  # the path of the resource (or scope) it sits under

    @property
    def type_path(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def is_resource(self) -> bool:
        return self.tail is None and len(self.names) == len(self.types)


def parse(path: str) -> ArmPath | None:
    """The resource a path addresses, or None for a path that is not one (``/``, ``/tenants``)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        if parts and parts[0].lower() == "providers" and len(parts) >= 2:  # tenant-level provider paths
            return _provider_part(parts, 0, "")
        return None
    last = max((i for i, p in enumerate(parts) if p.lower() == "providers" and i + 1 < len(parts)), default=None)
    if last is None:
        # /subscriptions/s[/resourceGroups/g[/<tail>]]: Microsoft.Resources' own types.
        types, names = ["subscriptions"], [parts[1]]
        rest = parts[2:]
        if rest and rest[0].lower() == "resourcegroups":
            if len(rest) == 1:
                return ArmPath("Microsoft.Resources", ("subscriptions", "resourceGroups"), (parts[1],), None,
                               "/" + "/".join(parts[:2]), "/" + "/".join(parts[:2]))
            types.append("resourceGroups")
            names.append(rest[1])
            rest = rest[2:]
        resource = "/" + "/".join(parts[: 2 * len(types)])
        parent = "/" + "/".join(parts[: 2 * len(types) - 2]) if len(types) > 1 else ""
        tail = "/".join(rest) or None
        return ArmPath("Microsoft.Resources", tuple(types), tuple(names), tail, resource, parent)
    return _provider_part(parts, last, "/" + "/".join(parts[:last]))


def _provider_part(parts: list[str], at: int, scope: str) -> ArmPath:
    namespace = parts[at + 1]
    rest = parts[at + 2:]
    types, names = tuple(rest[0::2]), tuple(rest[1::2])
    tail = None
    if len(types) > len(names):  # an odd count: the last segment is a collection or an action
        tail, types = types[-1], types[:-1]
    resource = scope + "/" + "/".join(parts[at: at + 2 + 2 * len(names)])
    parent = scope + "/" + "/".join(parts[at: at + 2 * len(names)]) if names else scope
    if len(names) == 1:
        parent = scope
    return ArmPath(namespace, types, names, tail, resource, parent)


def operation_of(method: str, path: str) -> str | None:
    """``<namespace>/<types>/<write|delete|read>`` or ``…/<action>/action``; None when the path is no resource."""
    p = parse(path)
    if p is None:
        return None
    method = method.upper()
    if p.tail is not None:
        if method == "POST":
            return f"{p.type_path}/{p.tail}/action"
        if "/" not in p.tail:
            return f"{p.type_path}/{p.tail}/read" if method in READ_METHODS else f"{p.type_path}/{p.tail}/write"
        return f"{p.type_path}/read"
    if method in READ_METHODS:
        return f"{p.type_path}/read"
    if method in {"PUT", "PATCH"}:
        return f"{p.type_path}/write"
    if method == "DELETE":
        return f"{p.type_path}/delete"
    return f"{p.type_path}/action"  # POST to a resource itself
