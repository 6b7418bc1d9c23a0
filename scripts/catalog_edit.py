"""One routine pull-request edit, made in the current directory's copy of the repository (see
scripts/catalog_edits.sh): `add`, `exclude` or `budget`. Prints what it changed."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from haymaker import cost
from haymaker.selection import load_selection
from haymaker.settings import load_environment
from scenarios.catalog import load_catalog, scenario_files

ROOT = Path.cwd()
SELECTION = ROOT / "scenarios" / "selection.yaml"


def add() -> None:
    source = scenario_files(ROOT / "scenarios")[0]
    doc = yaml.safe_load(source.read_text())
    slug = doc["name"].removeprefix(f"{doc['area']}-")[3:]  # after <area>-NN-
    name = f"{doc['area']}-99-{slug}-copy"
    text = source.read_text().replace(f"name: {doc['name']}\n", f"name: {name}\n", 1)
    (ROOT / "scenarios" / f"{name}.yaml").write_text(text)
    print(f"added scenarios/{name}.yaml, a copy of {source.name}")


def exclude() -> None:
    catalog = load_catalog(ROOT / "scenarios")
    selection = load_selection(catalog, SELECTION)
    pool = [n for n in (selection.include or catalog.names())
            if n not in selection.exclude and n not in selection.pins]
    worst = max(pool, key=lambda n: (catalog[n].estimated_hourly_cost_usd, n))
    doc = yaml.safe_load(SELECTION.read_text())
    doc["exclude"] = [*(doc.get("exclude") or []), worst]
    SELECTION.write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"excluded {worst}")


def budget() -> None:
    catalog = load_catalog(ROOT / "scenarios")
    selection = load_selection(catalog, SELECTION)
    pool = [n for n in (selection.include or catalog.names()) if n not in selection.exclude]
    worst = 0.0
    for env in sorted(p.stem.split(".", 1)[1] for p in ROOT.glob("Pulumi.*.yaml")):
        buffer = load_environment(env, ROOT).cleanup_buffer_minutes
        costs = {n: cost.scenario_cost(catalog[n], selection.duration_hours, buffer).total_usd for n in pool}
        rest = sorted((n for n in pool if n not in selection.pins
                       and selection.weights.get(catalog[n].area, 1.0) > 0), key=lambda n: -costs[n])
        draw = list(selection.pins) + rest[: selection.sizes["large"] - len(selection.pins)]
        worst = max(worst, sum(costs[n] for n in draw))
    value = -(-round(worst * 100, 6) // 1) / 100  # up to the cent
    doc = yaml.safe_load(SELECTION.read_text())
    doc["budget_usd"] = value
    SELECTION.write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"budget_usd lowered to {value}")


if __name__ == "__main__":
    {"add": add, "exclude": exclude, "budget": budget}[sys.argv[1]]()
