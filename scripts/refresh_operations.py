"""Refresh scenarios/azure_operations.json, the snapshot of Azure's published resource-provider operations.

    .venv/bin/python scripts/refresh_operations.py SOURCE [SOURCE ...] [--namespace NS ...] [--note TEXT]

Each SOURCE is one public form of the same list, optionally followed by @YYYY-MM-DD, the day it was
taken (default: today, UTC); several sources are merged:

  docs           the "Azure permissions" reference pages, downloaded from MicrosoftDocs/azure-docs
                 (articles/role-based-access-control/permissions/<category>.md)
  docs:DIR       the same pages read from DIR (a checkout or a download of those files)
  az             run `az provider operation list` now (needs `az login`)
  az-json:FILE   the saved output of `az provider operation list`
  csv:FILE       a `Get-AzProviderOperation | Export-Csv` export
  sdk[:DIR]      the REST paths of the Azure SDKs and AAZ modules of azure-cli, read from DIR (default:
                 .azcli's site-packages, which scripts/azcli.sh installs from PyPI): no login, no web
  snapshot[:FILE] the operations of a snapshot (default: the committed one), to keep them when merging

The snapshot keeps the provider namespaces the catalog's `services` name (plus Microsoft.Resources),
or those given with --namespace, and only what can reach the Activity Log: write, delete and action
operations (no reads, no data actions). Examples:

  .venv/bin/python scripts/refresh_operations.py snapshot sdk      # what CI and this machine can reach
  .venv/bin/python scripts/refresh_operations.py docs
  .venv/bin/python scripts/refresh_operations.py az-json:ops.json@2026-11-28
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scenarios.operations import (ARM_OWN_NAMESPACES, SNAPSHOT_FILE, build_snapshot, namespace_of,  # noqa: E402
                                  parse_az_json, parse_docs_markdown, parse_powershell_csv, parse_sdk_source,
                                  write_snapshot)

DOCS_URL = ("https://raw.githubusercontent.com/MicrosoftDocs/azure-docs/main/articles/"
            "role-based-access-control/permissions/{category}.md")
DOCS_CATEGORIES = (
    "ai-machine-learning", "analytics", "compute", "containers", "databases", "devops", "general",
    "hybrid-multicloud", "identity", "integration", "internet-of-things", "management-and-governance",
    "migration", "mixed-reality", "monitor", "networking", "quantum", "security", "storage", "web-and-mobile")
SOURCE_RE = re.compile(r"^(?P<kind>docs|az|az-json|csv|sdk|snapshot)(?::(?P<path>[^@]+))?(?:@(?P<taken>.+))?$")
ROOT = Path(__file__).resolve().parent.parent


class SourceError(ValueError):
    pass


def catalog_namespaces(directory: Path) -> list[str]:
    """Provider namespaces named in the catalog's ``services`` (read as plain YAML: the catalog's own
    validation needs this snapshot)."""
    from scenarios.catalog import scenario_files
    from scenarios.safeyaml import load_yaml_file

    found = {namespace_of(s) for p in scenario_files(directory) for s in (load_yaml_file(p).get("services") or ())}
    return sorted(found | set(ARM_OWN_NAMESPACES), key=str.lower)


def _docs(directory: Path | None) -> list:
    ops = []
    for category in DOCS_CATEGORIES:
        if directory is None:
            with urllib.request.urlopen(DOCS_URL.format(category=category), timeout=60) as r:  # noqa: S310
                ops += parse_docs_markdown(r.read().decode())
        elif (directory / f"{category}.md").exists():
            ops += parse_docs_markdown((directory / f"{category}.md").read_text())
    return ops


def read_source(spec: str, today: str) -> tuple[list, dict]:
    """(operations, {"source": description, "taken": date}) for one SOURCE argument."""
    m = SOURCE_RE.match(spec)
    if not m or (m["kind"] in ("az-json", "csv") and not m["path"]) or (m["kind"] == "az" and m["path"]):
        raise SourceError(f"{spec!r} is not a source: use docs, docs:DIR, az, az-json:FILE, csv:FILE, sdk[:DIR] or "
                          "snapshot[:FILE], "
                          "optionally followed by @YYYY-MM-DD")
    kind, path, taken = m["kind"], m["path"], m["taken"] or today
    try:
        datetime.strptime(taken, "%Y-%m-%d")
    except ValueError:
        raise SourceError(f"{spec!r}: {taken!r} is not a date: use @YYYY-MM-DD") from None
    if path and not Path(path).exists():
        raise SourceError(f"{spec!r}: {path} does not exist")
    if kind == "docs":
        ops = _docs(Path(path) if path else None)
        described = "Azure permissions reference (MicrosoftDocs/azure-docs, role-based-access-control/permissions)"
    elif kind == "az":
        out = subprocess.run(["az", "provider", "operation", "list", "--output", "json"],
                             capture_output=True, text=True, check=True).stdout
        ops, described = parse_az_json(json.loads(out)), "az provider operation list"
    elif kind == "sdk":
        base = Path(path) if path else next((ROOT / ".azcli" / "lib").glob("python3*/site-packages"), None)
        if base is None or not base.is_dir():
            raise SourceError("sdk: no azure-cli environment: run bash scripts/azcli.sh, or name its site-packages")
        ops = []
        for module in list(base.glob("azure/mgmt/**/operations/*.py")) + list(base.glob("azure/cli/command_modules/**/aaz/**/*.py")):
            ops += parse_sdk_source(module.read_text(errors="replace"))
        version = next(base.glob("azure_cli-*.dist-info"), None)
        described = f"REST paths of the Azure SDKs and AAZ modules of {version.name.split('.dist')[0] if version else 'azure-cli'}"
    elif kind == "snapshot":
        doc = json.loads(Path(path or SNAPSHOT_FILE).read_text())
        ops = [(op, False) for names in doc["operations"].values() for op in names]
        described = "; ".join(s["source"] for s in doc["sources"])
        taken = m["taken"] or doc["taken"]
    elif kind == "az-json":
        ops, described = parse_az_json(json.loads(Path(path).read_text())), "az provider operation list"
    else:
        ops = parse_powershell_csv(Path(path).read_text(encoding="utf-8-sig"))
        described = "Get-AzProviderOperation export"
    if not ops:
        raise SourceError(f"{spec!r}: no operations found: check the input")
    return ops, {"source": described, "taken": taken}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refresh the snapshot of Azure's resource-provider operations.",
                                     epilog="SOURCE: docs | docs:DIR | az | az-json:FILE | csv:FILE | sdk[:DIR] | snapshot[:FILE], each "
                                            "optionally followed by @YYYY-MM-DD")
    parser.add_argument("sources", nargs="+", metavar="SOURCE")
    parser.add_argument("--namespace", action="append", default=None,
                        help="keep this provider namespace (repeatable; default: the catalog's)")
    parser.add_argument("--note", help="free text recorded in the snapshot (where a saved source came from)")
    parser.add_argument("--catalog", type=Path, default=SNAPSHOT_FILE.parent, help="scenario directory")
    parser.add_argument("--output", type=Path, default=SNAPSHOT_FILE)
    args = parser.parse_args(argv)
    today = datetime.now(timezone.utc).date().isoformat()
    ops, sources = [], []
    try:
        for spec in args.sources:
            found, described = read_source(spec, today)
            ops += found
            sources.append(described)
    except (SourceError, ValueError, OSError, subprocess.CalledProcessError) as e:
        print(f"refresh_operations: {e}", file=sys.stderr)
        return 2
    namespaces = args.namespace or catalog_namespaces(args.catalog)
    snapshot = build_snapshot(ops, namespaces, sources=sources, note=args.note)
    write_snapshot(snapshot, args.output)
    print(f"{args.output}: {snapshot['count']} operations of {len(namespaces)} namespaces, "
          f"taken {snapshot['taken']}")
    empty = [ns for ns, names in snapshot["operations"].items() if not names]
    if empty:
        print(f"no operations for: {', '.join(empty)} (not in the sources?)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
