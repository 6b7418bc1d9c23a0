"""What a recorded request is in the answer key: an ARM operation, or an Entra audit activity.

ARM requests are named by tests/wire/armpath.py (type path + verb). Three rules, and one reviewed
list, decide which of them a step must declare in ``expect``:

1. Reads (GET, HEAD) never reach the Activity Log; the long-running operation polls are reads.
2. A POST whose ``<type>/<segment>/action`` is not among the provider's published operations is not
   an operation the Activity Log records as a write or action: the published list names every action
   Azure RBAC and the Activity Log know. Name-availability checks are the common case
   (``Microsoft.Storage/checkNameAvailability`` is published as ``…/checknameavailability/read``).
   The harness reports these per command, so a new one is seen; a provider the snapshot does not cover
   is never excluded this way (its operations are unknown, and reported).
3. A template deployment (``Microsoft.Resources/deployments/write``) also causes the ``<type>/write``
   of every resource in its template: ARM deploys each one for the caller and logs it.

``INVISIBLE``: operations a step declares that the resource provider performs itself, so they are
never on the wire from az. Each entry is reviewed and says why.

Graph requests are named by the Entra audit activity they cause (``AUDIT``), after "Microsoft Entra
audit log categories and activities" (learn.microsoft.com/entra/identity/monitoring-health/
reference-audit-activities, Core Directory: ApplicationManagement, GroupManagement, UserManagement,
Policy). Reads cause none.
"""

from __future__ import annotations

import re

from scenarios.operations import namespace_of
from scenarios.armpath import operation_of

# (az command, operation) -> why the step declares an operation az itself never sends.
INVISIBLE: dict[tuple[str, str], str] = {}

# (method, Graph path after the version, with {id} for an object id) -> the audit activity it causes.
AUDIT: dict[tuple[str, str], str] = {
    # Application keys are its object id or applications(appId='…').
    ("POST", "applications"): "Add application",
    ("PATCH", "applications/{id}"): "Update application",
    ("DELETE", "applications/{id}"): "Delete application",
    ("POST", "applications/{id}/addPassword"): "Update application - Certificates and secrets management",
    ("POST", "applications/{id}/removePassword"): "Update application - Certificates and secrets management",
    ("POST", "applications/{id}/addKey"): "Update application - Certificates and secrets management",
    ("POST", "applications/{id}/removeKey"): "Update application - Certificates and secrets management",
    # A federated credential is a property of the application: the directory logs an application update.
    ("POST", "applications/{id}/federatedIdentityCredentials"): "Update application",
    ("PATCH", "applications/{id}/federatedIdentityCredentials/{id}"): "Update application",
    ("DELETE", "applications/{id}/federatedIdentityCredentials/{id}"): "Update application",
    ("POST", "applications/{id}/owners/$ref"): "Add owner to application",
    ("DELETE", "applications/{id}/owners/{id}/$ref"): "Remove owner from application",
    ("POST", "servicePrincipals"): "Add service principal",
    ("PATCH", "servicePrincipals/{id}"): "Update service principal",
    ("DELETE", "servicePrincipals/{id}"): "Remove service principal",
    ("POST", "servicePrincipals/{id}/addPassword"): "Add service principal credentials",
    ("POST", "servicePrincipals/{id}/removePassword"): "Remove service principal credentials",
    ("POST", "servicePrincipals/{id}/owners/$ref"): "Add owner to service principal",
    ("DELETE", "servicePrincipals/{id}/owners/{id}/$ref"): "Remove owner from service principal",
    ("POST", "servicePrincipals/{id}/appRoleAssignedTo"): "Add app role assignment to service principal",
    ("POST", "servicePrincipals/{id}/appRoleAssignments"): "Add app role assignment to service principal",
    ("DELETE", "servicePrincipals/{id}/appRoleAssignedTo/{id}"): "Remove app role assignment from service principal",
    ("POST", "oauth2PermissionGrants"): "Add delegated permission grant",
    ("DELETE", "oauth2PermissionGrants/{id}"): "Remove delegated permission grant",
    ("POST", "groups"): "Add group",
    ("PATCH", "groups/{id}"): "Update group",
    ("DELETE", "groups/{id}"): "Delete group",
    ("POST", "groups/{id}/members/$ref"): "Add member to group",
    ("DELETE", "groups/{id}/members/{id}/$ref"): "Remove member from group",
    ("POST", "groups/{id}/owners/$ref"): "Add owner to group",
    ("DELETE", "groups/{id}/owners/{id}/$ref"): "Remove owner from group",
    ("POST", "users"): "Add user",
    ("PATCH", "users/{id}"): "Update user",
    ("DELETE", "users/{id}"): "Delete user",
    ("POST", "identity/conditionalAccess/policies"): "Add conditional access policy",
    ("PATCH", "identity/conditionalAccess/policies/{id}"): "Update conditional access policy",
    ("DELETE", "identity/conditionalAccess/policies/{id}"): "Delete conditional access policy",
    ("POST", "identity/conditionalAccess/namedLocations"): "Add named location",
    ("PATCH", "identity/conditionalAccess/namedLocations/{id}"): "Update named location",
    ("DELETE", "identity/conditionalAccess/namedLocations/{id}"): "Delete named location",
    ("POST", "directory/administrativeUnits/{id}/members"): "Add member to administrative unit",
    ("POST", "directory/administrativeUnits/{id}/members/$ref"): "Add member to administrative unit",
    ("DELETE", "directory/administrativeUnits/{id}/members/{id}/$ref"): "Remove member from administrative unit",
}
_AUDIT = {(m, p.lower()): a for (m, p), a in AUDIT.items()}
_GRAPH_ACTIONS = {"addpassword", "removepassword", "addkey", "removekey", "restore", "getbyids", "checkmembergroups",
                  "getmembergroups", "checkmemberobjects", "getmemberobjects"}
# Graph actions that only read (POST with a query in the body).
GRAPH_READ_ACTIONS = {"getbyids", "checkmembergroups", "getmembergroups", "checkmemberobjects", "getmemberobjects"}
_ID_RE = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z]+\(.*\))$", re.I)


def arm_operations(requests: list[dict], snapshot) -> tuple[set[str], set[str], set[str]]:
    """(operations the Activity Log records for these requests, in the snapshot's spelling;
    POST actions rule 2 excludes; operations of providers the snapshot does not cover)."""
    ops, excluded, unknown = set(), set(), set()
    for r in requests:
        if r["host"] != "management.azure.com" or r["method"] in {"GET", "HEAD"}:
            continue  # rule 1
        op = operation_of(r["method"], r["path"])
        if op is None:
            continue
        if not snapshot.covers(namespace_of(op)):
            unknown.add(op)
            continue
        if op.endswith("/action") and op not in snapshot:
            excluded.add(op)  # rule 2
            continue
        ops.add(snapshot.by_lower.get(op.lower(), op))
        for rtype in r.get("deployed") or ():  # rule 3
            deployed = f"{rtype}/write"
            ops.add(snapshot.by_lower.get(deployed.lower(), deployed))
    return ops, excluded, unknown


_GRAPH_COLLECTIONS = ("identity/conditionalAccess/policies", "identity/conditionalAccess/namedLocations",
                      "directory/administrativeUnits")


def graph_path(path: str) -> str:
    """``groups/{id}/members/$ref`` for ``/v1.0/groups/1f…/members/$ref``: the segments that name an object
    (a GUID, ``applications(appId='…')``, or a key after a navigation such as a federated credential's name)
    become ``{id}``."""
    text = "/".join(p for p in path.split("/") if p).split("/", 1)[-1]  # without the version
    prefix = next((c for c in _GRAPH_COLLECTIONS if text.lower().startswith(c.lower())), None)
    parts = text[len(prefix):].strip("/").split("/") if prefix else text.split("/")
    head = [prefix] if prefix else [parts.pop(0)]
    alt = re.match(r"^([A-Za-z]+)\(.*\)$", head[0])
    if alt:  # applications(appId='…'): the key is in the collection's segment
        head, parts = [alt.group(1)], ["{id}", *parts]
    out = []
    for i, p in enumerate(parts):
        keyed = i % 2 == 0 and p != "$ref" and p.lower() not in _GRAPH_ACTIONS
        out.append("{id}" if keyed or _ID_RE.match(p) else p)
    return "/".join(head + [p for p in out if p])


def audit_activities(requests: list[dict]) -> tuple[list[str], set[str]]:
    """(activities, in the order sent, of the Graph requests; mutating Graph requests with no known activity)."""
    activities, unknown = [], set()
    for r in requests:
        if r["host"] != "graph.microsoft.com" or r["method"] in {"GET", "HEAD"}:
            continue
        shape = graph_path(r["path"])
        if shape.rsplit("/", 1)[-1].lower() in GRAPH_READ_ACTIONS:
            continue
        activity = _AUDIT.get((r["method"], shape.lower()))
        if activity is None:
            unknown.add(f"{r['method']} {shape}")
            continue
        keys = set(r.get("body_keys") or ())
        # A group sent whole as an administrative unit's new member is created there: "Add group", then the
        # unit's activity (the reference names both; their order in the log is not documented).
        created_in_unit = r["method"] == "POST" and shape == "directory/administrativeUnits/{id}/members" \
            and "displayName" in keys
        if created_in_unit:
            activities.append("Add group")
        activities.append(activity)
        # Owners and members bound in a create's body are added by the directory, each logged as its own
        # activity ("Add owner to group" after "Add group").
        kind = "group" if created_in_unit else \
            {"groups": "group", "applications": "application", "servicePrincipals": "service principal"}.get(shape)
        if r["method"] == "POST" and kind:
            if "owners@odata.bind" in keys:
                activities.append(f"Add owner to {kind}")
            if "members@odata.bind" in keys and kind == "group":
                activities.append("Add member to group")
    return activities, unknown
