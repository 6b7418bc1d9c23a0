"""`haymaker pr`: what a pull request changes in what runs draw, as its comment shows it.

Both sides are read the same way (haymaker/draws.py): the working tree, and the files of the base
revision written to a temporary folder. The base side is read leniently (a scenario file that today's
checks refuse still counts with what it declares), since it only serves as the "before" column.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from haymaker import catalogdiff
from haymaker.draws import Draw, Problem, Tree, check, image_problems, pool, read_tree, worst_draws
from haymaker.errors import CatalogError, HayMakerError
from haymaker.selection import SIZES, pick_scheduled
from haymaker.settings import REPO_ROOT
from scenarios.catalog import Catalog, Scenario, load_catalog, scenario_files

DRAWS = 2000  # simulated scheduled draws per size: the inclusion shares are within about 1 point
BASE_FILES = ("scenarios/*.yaml", "Pulumi.*.yaml", "policies/config.*.json")
MOST_PROBLEMS = 30
MARKER = "<!-- haymaker-plan -->"  # the comment's marker: pr.yml finds and edits its own comment by it


@dataclass
class Side:
    """One side of the comparison: the tree and what scheduled runs draw from it."""

    tree: Tree
    pool: dict[str, float | None] = field(default_factory=dict)
    inclusion: dict[str, dict[str, float]] = field(default_factory=dict)  # {size: {scenario: share}}
    worst: dict[str, list[Draw]] = field(default_factory=dict)  # {environment: draws}

    @classmethod
    def of(cls, tree: Tree) -> "Side":
        side = cls(tree)
        if tree.catalog is not None and tree.selection is not None:
            side.pool = pool(tree.catalog, tree.selection)
            side.inclusion = inclusion(tree.catalog, tree.selection)
            side.worst = {env: worst_draws(tree.catalog, tree.selection, env, tree.settings[env])
                          for env in tree.environments}
        return side

    def as_dict(self) -> dict:
        s = self.tree.selection
        selection = None if s is None else {
            "sizes": dict(s.sizes), "duration_hours": s.duration_hours, "budget_usd": s.budget_usd,
            "include": list(s.include), "exclude": list(s.exclude), "pins": list(s.pins),
            "weights": dict(sorted(s.weights.items()))}
        return {"selection": selection, "pool": dict(sorted(self.pool.items())),
                "inclusion": {size: dict(sorted(shares.items())) for size, shares in self.inclusion.items()},
                "worst_draws": [d.as_dict() for env in sorted(self.worst) for d in self.worst[env]],
                "problems_loading": [p.as_dict() for p in self.tree.problems]}


def inclusion(catalog: Catalog, selection, draws: int = DRAWS) -> dict[str, dict[str, float]]:
    """{size: {scenario: share of ``draws`` simulated scheduled runs that pick it}}, drawn by the very
    function scheduled runs use; a size that cannot be filled is left out (draws.check reports it).
    Scenarios of equal weight have equal chances, so each gets its weight's mean share (less noise)."""
    weights = pool(catalog, selection)
    peers: dict = {}
    for name, weight in weights.items():
        peers.setdefault(weight, []).append(name)
    shares = {}
    for size in SIZES:
        counts: Counter = Counter()
        try:
            for i in range(draws):
                counts.update(pick_scheduled(catalog, selection, f"20000101t0000z-{i:04x}", size))
        except HayMakerError:
            continue
        shares[size] = {n: round(sum(counts[p] for p in peers[w]) / (len(peers[w]) * draws), 4)
                        for n, w in weights.items()}
    return shares


@dataclass
class Review:
    base: str
    before: Side
    after: Side
    verdicts: dict  # {environment: {scenario: [Violation]}} of the working tree
    problems: list[Problem]
    changes: list[catalogdiff.Change]
    # What already fails every run of an environment before this change (an image not yet pinned): shown,
    # not held against the change.
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"base": self.base, "ok": self.ok, "problems": [p.as_dict() for p in self.problems],
                "warnings": [p.as_dict() for p in self.warnings],
                "before": self.before.as_dict(), "after": self.after.as_dict(),
                "verdicts": {env: {s: [v.as_dict() for v in vs] for s, vs in sorted(by.items())}
                             for env, by in sorted(self.verdicts.items())},
                "changes": [c.as_dict() for c in self.changes]}


def review(base: str, root: Path = REPO_ROOT) -> Review:
    """Compare the working tree at ``root`` with revision ``base`` of the same clone."""
    root = Path(root)
    files = catalogdiff.base_files(base, root, BASE_FILES)
    with tempfile.TemporaryDirectory(prefix="haymaker-base-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_text(text)
        base_tree = read_tree(Path(tmp), catalog=lenient_catalog(Path(tmp) / "scenarios"))
        before = Side.of(base_tree)
    head = read_tree(root)
    judged, problems = check(head)
    had = {(p.environment, p.subject) for p in image_problems(base_tree)}
    images = image_problems(head)
    problems += [p for p in images if (p.environment, p.subject) not in had]
    warnings = [p for p in images if (p.environment, p.subject) in had]
    after = Side.of(head)
    changes = catalogdiff.compare(catalogdiff.base_documents(base, root / "scenarios"),
                                  catalogdiff.head_documents(root / "scenarios"))
    return Review(base, before, after, judged, problems, changes, warnings)


def lenient_catalog(directory: Path) -> Catalog:
    """The catalog as today's checks load it, else every file that still reads as a scenario."""
    try:
        return load_catalog(directory)
    except CatalogError:
        pass
    found = {}
    for path in scenario_files(directory):
        try:
            s = Scenario.from_document(yaml.safe_load(path.read_text()))
        except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
            continue  # unreadable then: it counts as absent from the base
        found.setdefault(s.name, s)
    return Catalog(found)
