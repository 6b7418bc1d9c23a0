"""Azure's published resource-provider operations: the committed snapshot and the parsers that build it.

The snapshot (``scenarios/azure_operations.json``) holds the control-plane operations that can reach
the Activity Log (``…/write``, ``…/delete``, ``…/action``; no reads, no data actions) of the provider
namespaces the catalog uses. ``scripts/refresh_operations.py`` rebuilds it from one of three public
forms of the same list:

- the "Azure permissions" reference pages (MicrosoftDocs/azure-docs,
  ``articles/role-based-access-control/permissions/<category>.md``);
- the JSON of ``az provider operation list`` (needs a login);
- the CSV that ``Get-AzProviderOperation | Export-Csv`` writes (an ``Operation`` and an
  ``IsDataAction`` column);
- the REST paths of the Azure SDKs and AAZ command modules that azure-cli ships on PyPI (the `.azcli`
  environment): each operation's URL template and HTTP method, named as ARM names a request
  (scenarios/armpath.py). This is the source reachable without a login or the web, and it knows the
  operations az itself sends in the version the image carries (``backupsV2/write``). It yields writes
  and deletes only: whether a POST is an action the Activity Log records is the published list's word.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from scenarios import CATALOG_DIR

SNAPSHOT_FILE = CATALOG_DIR / "azure_operations.json"
# ARM's own operations: the template deployments some az commands submit, and the tags API. They may
# appear in any scenario, whatever its services.
ARM_OWN_PREFIXES = ("microsoft.resources/deployments/", "microsoft.resources/tags/")
ARM_OWN_NAMESPACES = ("Microsoft.Resources",)
_OP_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)+(/[A-Za-z0-9._-]+)+$")
_DOCS_ROW = re.compile(r"^>\s*\|\s*([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+/[^\s|]+)\s*\|")
_DOCS_DATA_HEADER = re.compile(r"^>\s*\|\s*\*\*DataAction\*\*", re.I)


def namespace_of(operation: str) -> str:
    return operation.split("/", 1)[0]


def kind_of(operation: str) -> str:
    """``write``, ``delete``, ``action`` or ``read`` (the last segment, lowercase)."""
    return operation.rsplit("/", 1)[-1].lower()


def is_operation_name(text: str) -> bool:
    return bool(_OP_RE.match(text)) and kind_of(text) in {"read", "write", "delete", "action"}


# --- parsers: each yields (operation, is_data_action) -----------------------------------------------

def parse_docs_markdown(text: str):
    """Rows of the permissions reference tables; rows under a ``**DataAction**`` header are data actions."""
    data = False
    for line in text.splitlines():
        if line.startswith("## "):
            data = False
        elif _DOCS_DATA_HEADER.match(line):
            data = True
        elif m := _DOCS_ROW.match(line):
            yield m.group(1), data


def parse_az_json(document) -> list[tuple[str, bool]]:
    """``az provider operation list`` output: providers with operations and resource types."""
    out = []
    for provider in document:
        groups = [provider.get("operations") or []]
        groups += [t.get("operations") or [] for t in provider.get("resourceTypes") or []]
        for ops in groups:
            out += [(op["name"], bool(op.get("isDataAction"))) for op in ops]
    return out


def parse_powershell_csv(text: str) -> list[tuple[str, bool]]:
    """``Get-AzProviderOperation | Export-Csv``: skips ``#`` comment lines, reads Operation and IsDataAction."""
    rows = csv.DictReader(io.StringIO("\n".join(
        line for line in text.lstrip("\ufeff").splitlines() if not line.startswith("#"))))
    if not rows.fieldnames or "Operation" not in rows.fieldnames:
        raise ValueError("the CSV has no Operation column: export Get-AzProviderOperation with Export-Csv")
    return [(r["Operation"], str(r.get("IsDataAction", "")).lower() == "true") for r in rows]


_URL_RE = re.compile(r"""["'](/(?:subscriptions/\{[^}]+\}|\{[A-Za-z_]*(?:[Ss]cope|[Uu]ri|[Ii]d)\})/[^"'\s]*providers/[^"'\s]+)["']""")
_METHOD_RE = re.compile(r"""method\s*=\s*["'](GET|PUT|PATCH|DELETE|POST|HEAD)["']|def method\(self\):\s*return\s*["'](GET|PUT|PATCH|DELETE|POST|HEAD)["']""")


def parse_sdk_source(text: str) -> list[tuple[str, bool]]:
    """Operations of the request builders in one SDK or AAZ module: each URL template, with the HTTP
    method that follows it in the same builder."""
    from scenarios.armpath import operation_of

    out = []
    for m in _URL_RE.finditer(text):
        method = _METHOD_RE.search(text, m.end(), m.end() + 4000)
        if method is None:
            continue
        template = re.sub(r"\{[^}]+\}", "x", m.group(1))
        if not template.startswith("/subscriptions/"):
            template = "/subscriptions/x/resourceGroups/x" + template[template.index("/providers/"):]
        op = operation_of(method.group(1) or method.group(2), template)
        # Writes and deletes only: whether ARM records a POST as an action or as a read (name-availability
        # checks) is known only from the published list.
        if op and "/x/" not in op + "/" and kind_of(op) in {"write", "delete"}:
            out.append((op, False))
    return out


def build_snapshot(operations, namespaces, *, sources: list[dict], note: str | None = None) -> dict:
    """Keep the control-plane write/delete/action operations of ``namespaces`` (case-insensitive),
    one spelling per operation (the first seen), grouped under the namespace as the catalog spells it.
    ``sources`` are ``{"source", "taken"}``; the snapshot's ``taken`` is the oldest of them."""
    wanted = {ns.lower(): ns for ns in namespaces}
    grouped: dict[str, dict[str, str]] = {ns: {} for ns in sorted(wanted.values(), key=str.lower)}
    for name, data_action in operations:
        name = name.strip()
        if data_action or not is_operation_name(name) or kind_of(name) == "read":
            continue
        ns = wanted.get(namespace_of(name).lower())
        if ns is not None:
            grouped[ns].setdefault(name.lower(), name)
    ops = {ns: sorted(names.values(), key=str.lower) for ns, names in grouped.items()}
    snapshot = {"taken": min(s["taken"] for s in sources), "sources": sources}
    if note:
        snapshot["note"] = note
    return {**snapshot, "refreshed_by": "scripts/refresh_operations.py",
            "kept": "control-plane write, delete and action operations of the namespaces below; "
                    "no read operations, no data actions",
            "count": sum(map(len, ops.values())), "operations": ops}


def write_snapshot(snapshot: dict, path: Path = SNAPSHOT_FILE) -> None:
    Path(path).write_text(json.dumps(snapshot, indent=1) + "\n")


# --- the committed snapshot ------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    taken: str  # the oldest of the sources' dates
    by_lower: dict  # lowercase operation -> published spelling
    namespaces: frozenset  # lowercase namespaces the snapshot covers

    def __contains__(self, operation: str) -> bool:
        return operation.lower() in self.by_lower

    def covers(self, namespace: str) -> bool:
        return namespace.lower() in self.namespaces

    def close_matches(self, operation: str, n: int = 3) -> list[str]:
        ns = namespace_of(operation).lower() + "/"
        pool = [k for k in self.by_lower if k.startswith(ns)] or list(self.by_lower)
        return [self.by_lower[m] for m in difflib.get_close_matches(operation.lower(), pool, n=n, cutoff=0.6)]


@lru_cache(maxsize=2)
def load_snapshot(path: Path = SNAPSHOT_FILE) -> Snapshot:
    doc = json.loads(Path(path).read_text())
    by_lower = {op.lower(): op for ops in doc["operations"].values() for op in ops}
    return Snapshot(taken=doc["taken"], by_lower=by_lower,
                    namespaces=frozenset(ns.lower() for ns in doc["operations"]))
