"""Every dependency has a lower and an upper bound (scripts/test_lowest.sh tests the lower ends, the lock
the upper), and the lock holds versions inside them."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def requirements() -> list[Requirement]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = doc["project"]["dependencies"] + doc["build-system"]["requires"]
    listed += [r for group in doc.get("dependency-groups", {}).values() for r in group if isinstance(r, str)]
    return [Requirement(r) for r in listed]


def test_every_dependency_has_a_lower_and_an_upper_bound():
    unbounded = [str(r) for r in requirements()
                 if not {s.operator for s in r.specifier} >= {">="} or not {s.operator for s in r.specifier} & {"<"}]
    assert unbounded == []


def test_the_lock_holds_versions_inside_the_bounds():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: Version(p["version"]) for p in lock["package"] if "version" in p}
    direct = [r for r in requirements() if r.name != "hatchling"]  # the build backend is not locked
    outside = [f"{r} (locked {locked.get(r.name)})" for r in direct
               if r.name not in locked or locked[r.name] not in r.specifier]
    assert outside == []
