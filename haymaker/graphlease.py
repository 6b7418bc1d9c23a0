"""Which of the platform's Graph identities a run borrows, so that no two live runs share one.

Activity Log and directory audit events are attributed to a run by their caller identity. The
identities of Graph scenarios are long-lived and borrowed (components/graphidentity.py), so a run
leases one slot of each of its Graph scenarios' pools at ``up``, records the lease as a stack tag,
and holds it as long as its stack exists: teardown removes the stack last, so a slot is never handed
to a new run while an older one may still act with it.
"""

from __future__ import annotations

import uuid
from typing import Iterable, Mapping

from haymaker.errors import InvalidInput, Refused

LEASE_TAG = "haymaker:graph-identities"
MAX_POOL_SIZE = 5
MAX_TAG_VALUE = 256  # Pulumi stack tag values are at most 256 characters


def graph_identity_name(environment: str, scenario: str, slot: int) -> str:
    """The platform's user-assigned identity for slot ``slot`` of ``scenario``'s pool."""
    return f"haymaker-{environment}-graph-{scenario}-{slot}"


def offline_graph_identities(environment: str, subscription_id: str, pool_size: int = 3, catalog=None) -> dict:
    """Placeholders in the shape of the platform's ``graphIdentities`` output, for an offline plan of
    ``catalog`` (default: the repository's)."""
    from scenarios.catalog import load_catalog

    catalog = catalog or load_catalog()
    group = f"/subscriptions/{subscription_id}/resourceGroups/haymaker-{environment}-platform"

    def identity(scenario: str, slot: int) -> dict:
        name = graph_identity_name(environment, scenario, slot)
        return {"id": f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/client")),
                "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/principal"))}

    return {s.name: {"permissions": list(s.graph_permissions),
                     "identities": [identity(s.name, n) for n in range(pool_size)]}
            for s in catalog.scenarios.values() if s.graph_permissions}


def check_pool_size(size) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_POOL_SIZE:
        raise InvalidInput(f"haymaker:graphIdentityPoolSize {size!r} must be a whole number from 1 to "
                           f"{MAX_POOL_SIZE}: how many live runs may name the same Graph scenario at once")


def format_leases(leases: Mapping[str, int]) -> str:
    """``identity-01-service-principals=0,security-02-entra-id-groups=2`` (sorted, so stable)."""
    value = ",".join(f"{s}={n}" for s, n in sorted(leases.items()))
    if len(value) > MAX_TAG_VALUE:
        raise InvalidInput(f"{len(leases)} Graph scenarios in one run do not fit the {LEASE_TAG} stack tag "
                           f"({len(value)} > {MAX_TAG_VALUE} characters): name fewer Graph scenarios")
    return value


def parse_leases(value: str | None) -> dict[str, int]:
    """The lease tag of a run stack; a malformed entry is an error, never silently a free slot."""
    leases: dict[str, int] = {}
    for part in filter(None, (value or "").split(",")):
        scenario, sep, slot = part.partition("=")
        if not sep or not scenario or not slot.isdigit():
            raise InvalidInput(f"stack tag {LEASE_TAG} has a malformed entry {part!r}: expected <scenario>=<slot>")
        leases[scenario] = int(slot)
    return leases


def pool_sizes(graph_identities: Mapping[str, Mapping]) -> dict[str, int]:
    """Slots per scenario from the platform stack's ``graphIdentities`` output."""
    return {scenario: len(entry.get("identities") or []) for scenario, entry in graph_identities.items()}


def lease_graph_identities(graph_scenarios: Iterable[str], pools: Mapping[str, int], live_stacks: Iterable,
                           *, own_stack: str | None = None) -> dict[str, int]:
    """The lowest free slot of each Graph scenario of a new run.

    ``live_stacks``: every run stack that exists (objects with ``name`` and ``tags``), whatever its
    expiry: a stack that still exists may still be torn down with its identity. Refuses (exit 2) with
    the runs holding a scenario's slots when all of them are taken.
    """
    held: dict[str, dict[int, str]] = {}
    for stack in live_stacks:
        if stack.name == own_stack:
            continue
        for scenario, slot in parse_leases((stack.tags or {}).get(LEASE_TAG)).items():
            held.setdefault(scenario, {})[slot] = stack.name
    leases, problems = {}, []
    for scenario in sorted(set(graph_scenarios)):
        size = pools.get(scenario, 0)
        if size == 0:
            problems.append(f"{scenario}: the platform provisions no Graph identity for it: release the platform "
                            "(platform.yml) after adding a Graph scenario")
            continue
        taken = held.get(scenario, {})
        free = [slot for slot in range(size) if slot not in taken]
        if free:
            leases[scenario] = free[0]
        else:
            holders = ", ".join(taken[slot] for slot in sorted(taken) if slot < size)
            problems.append(f"{scenario}: all {size} of its Graph identities are leased by live runs ({holders}): "
                            "wait for one to end, take one down, or raise haymaker:graphIdentityPoolSize and "
                            "release the platform")
    if problems:
        raise Refused("; ".join(problems))
    return leases


def leased_identities(lease_tag: str | None, graph_identities) -> dict[str, tuple[str, tuple[str, ...]]]:
    """scenario -> (clientId, Graph permissions) of each identity a run stack's lease tag names, from the
    platform's ``graphIdentities`` output: what `up` leased and the run program attached. Raises
    InvalidInput when a lease names a scenario or slot the output does not provide."""
    leases = parse_leases(lease_tag)
    if leases and not isinstance(graph_identities, Mapping):
        raise InvalidInput("the platform stack exports no graphIdentities")
    found, missing = {}, []
    for scenario, slot in sorted(leases.items()):
        entry = graph_identities.get(scenario) or {}
        identities = entry.get("identities") or []
        client_id = identities[slot].get("clientId") if slot < len(identities) else None
        if not client_id:
            missing.append(f"{scenario}={slot}")
            continue
        found[scenario] = (client_id, tuple(entry.get("permissions") or ()))
    if missing:
        raise InvalidInput(f"the platform's graphIdentities output has no identity for the lease {', '.join(missing)}")
    return found
