"""Routine pull-request edits, made in the current directory's copy of the repository (see
scripts/catalog_edits.sh): `add`, `exclude` and/or `budget`, in the order given. Prints what it changed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from haymaker.draws import read_tree, up_to_cent, worst_draws
from scenarios.catalog import scenario_files

ROOT = Path.cwd()
SELECTION = ROOT / "scenarios" / "selection.yaml"


def add() -> None:
    source = scenario_files(ROOT / "scenarios")[0]
    doc = yaml.safe_load(source.read_text())
    slug = doc["name"].removeprefix(f"{doc['area']}-")[3:]  # after <area>-NN-
    name = next(n for n in (f"{doc['area']}-{i:02d}-{slug}-copy" for i in range(99, 0, -1))
                if not (ROOT / "scenarios" / f"{n}.yaml").exists())
    text = source.read_text().replace(f"name: {doc['name']}\n", f"name: {name}\n", 1)
    (ROOT / "scenarios" / f"{name}.yaml").write_text(text)
    print(f"added scenarios/{name}.yaml, a copy of {source.name}")


def exclude() -> None:
    tree = read_tree(ROOT)
    dearest = next(d for d in worst_draws(tree.catalog, tree.selection, "dev", tree.settings["dev"])
                   if d.kind == "large")
    worst = next(n for n in dearest.scenarios if n not in tree.selection.pins)
    text = SELECTION.read_text()  # edited as a person would, comments kept
    if re.search(r"^exclude: \[\]\s*$", text, re.M):
        text = re.sub(r"^exclude: \[\]\s*$", f"exclude:\n  - {worst}", text, count=1, flags=re.M)
    else:
        text = re.sub(r"^exclude:\s*$", f"exclude:\n  - {worst}", text, count=1, flags=re.M)
    SELECTION.write_text(text)
    print(f"excluded {worst}")


def budget() -> None:
    """The smallest budget that still admits every draw (haymaker/draws.py: the dearest large or on-demand
    run in any environment)."""
    tree = read_tree(ROOT)
    value = max(up_to_cent(d.cost_usd) for env in tree.environments
                for d in worst_draws(tree.catalog, tree.selection, env, tree.settings[env]))
    SELECTION.write_text(re.sub(r"^budget_usd: .*$", f"budget_usd: {value}", SELECTION.read_text(), count=1,
                                flags=re.M))
    print(f"budget_usd lowered to {value}")


if __name__ == "__main__":
    for edit in sys.argv[1:]:
        {"add": add, "exclude": exclude, "budget": budget}[edit]()
