"""Estimated deploy time: the longest chain of the declared dependency graph.

Latencies are typical create times seen for each resource type (seconds), including the wait for
directory replication where the next step needs it. One table; change it here.
"""

from __future__ import annotations

LATENCY_SECONDS = {
    "azure-native:resources:ResourceGroup": 5,
    "azuread:index/application:Application": 10,
    "azuread:index/servicePrincipal:ServicePrincipal": 15,
    "azuread:index/applicationPassword:ApplicationPassword": 5,
    "azuread:index/appRoleAssignment:AppRoleAssignment": 10,
    "azure-native:authorization:RoleAssignment": 20,
    "azure-native:app:Job": 45,
}
DEFAULT_LATENCY_SECONDS = 30


def latency(type_token: str, custom: bool) -> int:
    if not custom:
        return 0  # components deploy nothing themselves
    return LATENCY_SECONDS.get(type_token, DEFAULT_LATENCY_SECONDS)


def critical_path(resources) -> tuple[int, list[str]]:
    """(seconds, chain of logical names) of the longest weighted path; resources have urn,
    type, name, custom and dependencies (urns)."""
    by_urn = {r.urn: r for r in resources}
    finish: dict[str, tuple[int, list[str]]] = {}

    def visit(urn: str, trail: frozenset) -> tuple[int, list[str]]:
        if urn in finish:
            return finish[urn]
        r = by_urn[urn]
        best = min([visit(dep, trail | {urn}) for dep in r.dependencies if dep in by_urn and dep not in trail],
                   key=_longest_first, default=(0, []))
        own = latency(r.type, r.custom)
        finish[urn] = (best[0] + own, best[1] + ([r.name] if own else []))
        return finish[urn]

    results = [visit(u, frozenset()) for u in by_urn]
    return min(results, default=(0, []), key=_longest_first)


def _longest_first(path: tuple[int, list[str]]):
    """The longest path; of equally long ones the first by name, so that a plan reads the same every time
    (the mock runtime registers resources in no fixed order)."""
    return -path[0], path[1]
