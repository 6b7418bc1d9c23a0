"""The Graph rights a person grants once, printed (`haymaker platform grants`) and verified read-only.

A Graph identity's app roles (and, for scenarios whose agents create groups, a Groups Administrator role
scoped to HayMaker's administrative unit) are admin consent: a Privileged Role Administrator grants them
once, after the platform has created the identities. HayMaker never grants them; it prints the exact
commands (from the trust table, haymaker/trust.py) and checks them with Graph reads only: `doctor`, and
`up` before a run borrows an identity. The applications' federated credentials are checked the same way
(`haymaker platform verify`, which the drift check runs).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from components.roles import GRAPH_APP_ROLES, MICROSOFT_GRAPH_APP_ID
from haymaker import trust
from haymaker.errors import Refused
from haymaker.graphlease import graph_identity_name

GRAPH = "https://graph.microsoft.com/v1.0"
GRAPH_SERVICE_PRINCIPAL = f"/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')"


@dataclass(frozen=True)
class Expected:
    scenario: str
    slot: int
    name: str  # the managed identity's resource name
    permissions: tuple[str, ...]
    unit_role: bool  # Groups Administrator scoped to the administrative unit


def expected(table: trust.Table, pool_size: int) -> list[Expected]:
    return [Expected(i.scenario, slot, graph_identity_name(table.environment, i.scenario, slot), i.graph,
                     bool(i.directory_roles))
            for i in table.of_kind(trust.GRAPH_IDENTITY) for slot in range(pool_size)]


def check_allowlist(table: trust.Table, policy_config: dict) -> None:
    """Refuse (exit 2) to print a grant the environment's allowlist refuses (graph-permissions-allowlist)."""
    from haymaker.policycheck import effective
    from policies.rules import POLICIES, graph_permission_allowed

    policy = next(p for p in POLICIES if p.name == "graph-permissions-allowlist")
    _, cfg = effective(policy, policy_config)
    problems = [f"{i.scenario}: {why}" for i in table.of_kind(trust.GRAPH_IDENTITY) for perm in i.graph
                if (why := graph_permission_allowed(perm, cfg))]
    if problems:
        raise Refused("; ".join(problems))


def _body(doc: dict) -> str:
    """A JSON body for `az rest --body` in which $principal, $graph_sp and $unit expand."""
    text = json.dumps(doc, sort_keys=True)
    for var in ("principal", "graph_sp", "unit"):
        text = text.replace(f'"${var}"', f'"\'"${var}"\'"')
    return f"'{text}'"


def render(table: trust.Table, pool_size: int) -> str:
    """The commands a Privileged Role Administrator runs once for ``table``'s Graph identities."""
    env = table.environment
    rows = expected(table, pool_size)
    group = f"haymaker-{env}-platform"
    out = [f"# Graph rights of the {env} Graph identities: run once, as a Privileged Role Administrator, after the",
           f"# platform of {env} exists (its identities are in {group}). HayMaker only reads them back:",
           f"# `haymaker doctor -e {env}` and every `haymaker up` that borrows one.",
           "set -euo pipefail"]
    if not rows:
        return "\n".join(out + [f"# The catalog has no Graph scenario: nothing to grant in {env}."]) + "\n"
    out.append(f"graph_sp=\"$(az ad sp show --id {MICROSOFT_GRAPH_APP_ID} --query id --output tsv)\"")
    if any(r.unit_role for r in rows):
        unit = trust.administrative_unit_name(env)
        uri = f"{GRAPH}/directory/administrativeUnits?$filter=displayName eq '{unit}'"
        out += [f"# The administrative unit the agents' groups are created in (`haymaker platform bootstrap` step 6).",
                f"unit=\"$(az rest --method GET --uri {shlex.quote(uri)} --query 'value[0].id' --output tsv)\"",
                f": \"${{unit:?no administrative unit named {unit}: create it first (bootstrap step 6)}}\""]
    for r in rows:
        out.append(f"# {r.scenario}, slot {r.slot}: {', '.join(r.permissions)}"
                   + (f"; {trust.GROUPS_ADMINISTRATOR} on {trust.administrative_unit_name(env)}" if r.unit_role else ""))
        out.append(f"principal=\"$(az identity show --resource-group {group} --name {r.name} --query principalId "
                   "--output tsv)\"")
        for perm in r.permissions:
            body = _body({"principalId": "$principal", "resourceId": "$graph_sp", "appRoleId": GRAPH_APP_ROLES[perm]})
            out.append(f"az rest --method POST --uri \"{GRAPH}/servicePrincipals/$principal/appRoleAssignments\" "
                       f"--body {body}  # {perm}")
        if r.unit_role:
            body = _body({"principalId": "$principal", "directoryScopeId": "/administrativeUnits/$unit",
                          "roleDefinitionId": trust.DIRECTORY_ROLE_TEMPLATES[trust.GROUPS_ADMINISTRATOR]})
            body = body.replace('"/administrativeUnits/$unit"', '"/administrativeUnits/\'"$unit"\'"')
            out.append(f"az rest --method POST --uri \"{GRAPH}/roleManagement/directory/roleAssignments\" "
                       f"--body {body}")
    return "\n".join(out) + "\n"


def as_json(table: trust.Table, pool_size: int) -> list[dict]:
    return [{"identity": r.name, "scenario": r.scenario, "slot": r.slot,
             "app_roles": [{"permission": p, "app_role_id": GRAPH_APP_ROLES[p]} for p in r.permissions],
             "directory_roles": [{"role": trust.GROUPS_ADMINISTRATOR,
                                  "role_template_id": trust.DIRECTORY_ROLE_TEMPLATES[trust.GROUPS_ADMINISTRATOR],
                                  "administrative_unit": trust.administrative_unit_name(table.environment)}]
             if r.unit_role else []} for r in expected(table, pool_size)]


# --- read-only verification -------------------------------------------------------------------------

def missing_app_roles(graph, principal_id: str, permissions, graph_sp: str | None = None) -> list[str]:
    """The permissions among ``permissions`` that Graph does not list as granted to ``principal_id``
    (``graph``: a reader with ``get`` and ``list``; Application.Read.All reads both)."""
    if graph_sp is None:
        graph_sp = microsoft_graph_id(graph)
    held = {(a.get("resourceId"), str(a.get("appRoleId", "")).lower())
            for a in graph.list(f"/servicePrincipals/{principal_id}/appRoleAssignments", {})}
    return [p for p in permissions if (graph_sp, GRAPH_APP_ROLES[p].lower()) not in held]


def _lacks(graph, identity: dict, permissions, graph_sp: str) -> list[str]:
    """What one slot lacks; an identity Graph does not know lacks everything (the platform did not make it)."""
    from haymaker.azure import AzureError

    try:
        return missing_app_roles(graph, identity["principalId"], permissions, graph_sp)
    except AzureError as e:
        if " 404 " not in str(e):
            raise
        return [f"{', '.join(permissions)} (Graph knows no service principal {identity['principalId']}: release the "
                "platform)"]


def microsoft_graph_id(graph) -> str:
    found = graph.get(GRAPH_SERVICE_PRINCIPAL + "?$select=id")
    if not found:
        raise Refused("Microsoft Graph's service principal is not in this tenant's directory: cannot verify app roles")
    return found["id"]


def check_borrowed(graph, leases: dict[str, int], graph_identities: dict) -> None:
    """Before a run borrows identities: each leased one holds its scenario's Graph permissions. Refuses
    (exit 2, nothing created) naming what a person must grant."""
    graph_sp, problems = None, []
    for scenario, slot in sorted(leases.items()):
        entry = (graph_identities or {}).get(scenario) or {}
        identities = entry.get("identities") or []
        if slot >= len(identities):
            continue  # the lease itself is refused elsewhere, with its own message
        graph_sp = graph_sp or microsoft_graph_id(graph)
        missing = _lacks(graph, identities[slot], entry.get("permissions") or (), graph_sp)
        if missing:
            problems.append(f"{scenario} slot {slot} lacks {', '.join(missing)}")
    if problems:
        raise Refused(f"the Graph identities this run would borrow are not granted their Graph permissions "
                      f"({'; '.join(problems)}): a Privileged Role Administrator runs what `haymaker platform "
                      "grants` prints; nothing was created")


def verify_borrowed(azure, spec, platform_outputs) -> None:
    """What `up` calls once the run's leases are known; ``platform_outputs`` is called only when it borrows."""
    if not spec.graph_leases:
        return
    check_borrowed(azure.graph_reader(), dict(spec.graph_leases), platform_outputs().get("graphIdentities") or {})


def verify_identities(graph, graph_identities: dict) -> list[str]:
    """Every slot of every Graph scenario the platform exports: what it lacks ([] when all is granted)."""
    graph_sp, problems = None, []
    for scenario, entry in sorted((graph_identities or {}).items()):
        for slot, identity in enumerate(entry.get("identities") or []):
            graph_sp = graph_sp or microsoft_graph_id(graph)
            missing = _lacks(graph, identity, entry.get("permissions") or (), graph_sp)
            if missing:
                problems.append(f"{scenario} slot {slot} lacks {', '.join(missing)}")
    return problems


def verify_applications(graph, table: trust.Table, repository: str) -> list[str]:
    """Each application of the table exists once and trusts exactly its subjects (Application.Read.All)."""
    problems = []
    for i in (x for x in table.federated() if x.kind == trust.APPLICATION):
        found = [a for a in graph.list("/applications", {"$filter": f"startswith(displayName,'{i.name}')",
                                                          "$select": "id,displayName"}) if a["displayName"] == i.name]
        if len(found) != 1:
            problems.append(f"{i.name}: {len(found)} applications have that name, not one "
                            "(`haymaker platform bootstrap --print`, step 3)")
            continue
        credentials = graph.list(f"/applications/{found[0]['id']}/federatedIdentityCredentials", {})
        subjects = sorted(c.get("subject", "") for c in credentials)
        if subjects != sorted(i.subjects(repository)):
            problems.append(f"{i.name}: trusts {subjects or 'nothing'}, not {sorted(i.subjects(repository))}")
        if any(c.get("issuer") != trust.GITHUB_ISSUER for c in credentials):
            problems.append(f"{i.name}: a federated credential's issuer is not GitHub's ({trust.GITHUB_ISSUER})")
    return problems
