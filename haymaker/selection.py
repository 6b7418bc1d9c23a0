"""Which scenarios a run gets: scheduled picks from selection.yaml, or names given on demand."""

from __future__ import annotations

import difflib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from haymaker.errors import CatalogError, InvalidInput
from haymaker.runspec import check_duration, run_seed
from scenarios import CATALOG_DIR
from scenarios.catalog import Catalog, _validator, json_path
from scenarios.safeyaml import YamlProblem, load_yaml_file

SIZES = ("small", "medium", "large")
SELECTION_FILE = CATALOG_DIR / "selection.yaml"


@dataclass(frozen=True)
class Selection:
    sizes: dict
    duration_hours: int
    budget_usd: float
    min_on_demand: int
    max_on_demand: int
    max_live_on_demand_runs: int
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    pins: tuple[str, ...] = ()
    weights: dict = field(default_factory=dict)


def load_selection(catalog: Catalog, path: Path = SELECTION_FILE, shown: str | None = None) -> Selection:
    """Parse and check selection.yaml against the schema and the catalog; all problems at once.
    ``shown``: how messages name the file (default: scenarios/selection.yaml for the project's own)."""
    shown = shown or ("scenarios/selection.yaml" if Path(path).resolve() == SELECTION_FILE else str(path))
    try:
        doc = load_yaml_file(Path(path))
    except YamlProblem as e:
        raise CatalogError([f"{shown}: {e.where}: {e.message}"]) from None
    errors = [f"{shown}: {json_path(e.absolute_path)}: {e.message}"
              for e in _validator("selection.schema.json").iter_errors(doc)]
    if errors:
        raise CatalogError(errors)
    for key in ("include", "exclude", "pins"):
        for i, name in enumerate(doc.get(key) or ()):
            if name not in catalog:
                errors.append(f"{shown}: {key}[{i}]: {unknown_name_message(name, catalog)}")
    conflict = set(doc.get("pins") or ()) & set(doc.get("exclude") or ())
    for name in sorted(conflict):
        errors.append(f"{shown}: pins: {name!r} is both pinned and excluded: remove it from one list")
    od = doc["on_demand"]
    if od["min_scenarios"] > od["max_scenarios"]:
        errors.append(f"{shown}: on_demand: min_scenarios is above max_scenarios")
    if errors:
        raise CatalogError(errors)
    return Selection(
        sizes=dict(doc["sizes"]), duration_hours=doc["duration_hours"],
        budget_usd=float(doc["budget_usd"]), min_on_demand=od["min_scenarios"],
        max_on_demand=od["max_scenarios"], max_live_on_demand_runs=od["max_live_runs"],
        include=tuple(doc.get("include") or ()), exclude=tuple(doc.get("exclude") or ()),
        pins=tuple(doc.get("pins") or ()), weights=dict(doc.get("weights") or {}),
    )


def suggestions(name: str, names: list[str], limit: int = 3) -> list[str]:
    """Names a mistyped one may mean: the same in other case; else those it starts, then those that
    contain it (``compute-01``, ``linux-vm``); else the closest spellings."""
    query = name.strip().lower()
    lowered = {n.lower(): n for n in sorted(names)}
    if query in lowered:
        return [lowered[query]]
    found = [n for low, n in lowered.items() if query and low.startswith(query)]
    found += [n for low, n in lowered.items() if query and query in low]
    if not found:
        found = [lowered[c] for c in difflib.get_close_matches(query, list(lowered), n=limit, cutoff=0.5)]
    return list(dict.fromkeys(found))[:limit]


def unknown_name_message(name: str, catalog: Catalog) -> str:
    close = suggestions(name, catalog.names())
    hint = f"did you mean {', '.join(close)}?" if close else "see `haymaker scenarios list`"
    return f"unknown scenario {name!r}: {hint}"


def pick_scheduled(catalog: Catalog, selection: Selection, run_id: str, size: str) -> tuple[str, ...]:
    """Deterministic for a run id: pins first, then weighted picks without replacement."""
    if size not in SIZES:
        raise InvalidInput(f"size {size!r} is unknown: use one of {', '.join(SIZES)}")
    count = selection.sizes[size]
    candidates = [n for n in (selection.include or catalog.names()) if n not in set(selection.exclude)]
    pins = [n for n in selection.pins if n in catalog]
    if len(pins) > count:
        raise InvalidInput(f"selection.yaml pins {len(pins)} scenarios but size {size} picks only {count}: "
                           "unpin some or choose a larger size")
    weighted = [(n, float(selection.weights.get(catalog[n].area, 1.0))) for n in sorted(set(candidates) - set(pins))]
    weighted = [(n, w) for n, w in weighted if w > 0]
    if len(pins) + len(weighted) < count:
        raise InvalidInput(
            f"size {size} needs {count} scenarios but selection.yaml allows only {len(pins) + len(weighted)}: "
            "widen include, shorten exclude, raise a zero weight, or choose a smaller size"
        )
    rng = random.Random(run_seed(run_id))
    # Efraimidis-Spirakis: key u^(1/w); the largest keys are a weighted sample without replacement.
    keyed = sorted(weighted, key=lambda nw: math.log(rng.random() or 1e-300) / nw[1], reverse=True)
    return tuple(pins + [n for n, _ in keyed[: count - len(pins)]])


def pick_on_demand(catalog: Catalog, selection: Selection, names: list[str]) -> tuple[str, ...]:
    lo, hi = selection.min_on_demand, selection.max_on_demand
    if not lo <= len(names) <= hi:
        raise InvalidInput(f"an on-demand run names {lo} to {hi} scenarios; got {len(names)}")
    unknown = [unknown_name_message(n, catalog) for n in names if n not in catalog]
    if unknown:
        raise InvalidInput("; ".join(unknown))
    if len(set(names)) != len(names):
        raise InvalidInput("a scenario is named twice: name each scenario once")
    return tuple(names)


def resolve_duration(selection: Selection, hours: int | None) -> int:
    return check_duration(selection.duration_hours if hours is None else hours)
