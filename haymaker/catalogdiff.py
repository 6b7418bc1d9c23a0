"""What a catalog change adds to the tenant's logs: expected operations per scenario, before and after.

The pull-request workflow plans one run of a few scenarios; a PR may change any of the 50. This compares
each scenario file at a git revision (the PR's base) with the working tree, so the reviewer sees the
Activity Log operations every changed scenario will add or stop causing. Both sides are read as plain
YAML: the base may predate today's schema, and `scenarios validate` checks the new side anyway.
"""

from __future__ import annotations

import fnmatch
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from haymaker.errors import InvalidInput
from scenarios import CATALOG_DIR
from scenarios.catalog import NON_SCENARIO_FILES, scenario_files


MOST_ROWS = 20  # with at most 5 operations a cell, the section stays under 15,000 characters


@dataclass(frozen=True)
class Change:
    name: str
    status: str  # added, changed or removed
    before: int  # operations declared over one pass of the steps
    after: int
    new: tuple[str, ...]  # operations the scenario did not declare before
    gone: tuple[str, ...]  # operations it no longer declares

    def as_dict(self) -> dict:
        return {"scenario": self.name, "status": self.status, "expected_operations_before": self.before,
                "expected_operations_after": self.after, "new_operations": list(self.new),
                "operations_no_longer_expected": list(self.gone)}


def operations(doc) -> list[str]:
    """Every operation the document's steps declare, one pass, in order (a malformed part counts as none)."""
    phases = doc.get("phases") if isinstance(doc, dict) else None
    found = []
    for steps in phases.values() if isinstance(phases, dict) else ():
        for step in steps if isinstance(steps, list) else ():
            expect = step.get("expect") if isinstance(step, dict) else None
            found += [op for op in expect if isinstance(op, str)] if isinstance(expect, list) else []
    return found


def _run_git(root: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise InvalidInput(f"cannot run git to read the base catalog: {e}") from None


def _git(root: Path, *args: str) -> str:
    done = _run_git(root, *args)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise InvalidInput(f"git {' '.join(args[:2])} failed: {reason}")
    return done.stdout


def repo_root(directory: Path, base: str) -> Path:
    """The top of the git clone holding ``directory``, once ``base`` is known to be in it."""
    try:
        root = Path(_git(directory, "rev-parse", "--show-toplevel").strip())
    except InvalidInput as e:
        raise InvalidInput(f"{directory} is not in a git clone, so there is no {base!r} to compare "
                           f"with: run it in a clone of the repository ({e})") from None
    if _run_git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").returncode != 0:
        raise InvalidInput(f"revision {base!r} is not in this clone: fetch it (in Actions, actions/checkout with "
                           "fetch-depth: 2 has the base as HEAD^1) or name another --base")
    return root


def base_files(base: str, directory: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    """{path relative to ``directory``: text} of the files at revision ``base`` whose relative path matches
    one of the ``patterns`` (fnmatch: ``*`` also matches ``/``)."""
    root = repo_root(directory, base)
    prefix = directory.resolve().relative_to(root).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    listed = [n[len(prefix):] for n in _git(root, "ls-tree", "-r", "--name-only", base, "--", prefix or ".").splitlines()]
    wanted = [n for n in listed if any(fnmatch.fnmatchcase(n, p) for p in patterns)]  # ls-tree takes no globs
    return {name: _git(root, "show", f"{base}:{prefix}{name}") for name in wanted}


def base_documents(base: str, directory: Path | None = None) -> dict[str, object]:
    """{file name: parsed YAML} of the scenario files at revision ``base``."""
    directory = directory or CATALOG_DIR
    docs = {}
    for name, text in base_files(base, directory, ("*.yaml",)).items():
        if "/" not in name and name not in NON_SCENARIO_FILES:
            try:
                docs[name] = yaml.safe_load(text)
            except yaml.YAMLError:
                docs[name] = None  # unreadable then: everything it declares now is new
    return docs


def head_documents(directory: Path | None = None) -> dict[str, object]:
    docs = {}
    for path in scenario_files(directory or CATALOG_DIR):
        try:
            docs[path.name] = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise InvalidInput(f"{path}: not valid YAML ({e}): run `haymaker scenarios validate`") from None
    return docs


def compare(before: dict[str, object], after: dict[str, object]) -> list[Change]:
    """The scenario files that differ, by file name, with what each declares before and after."""
    changes = []
    for file in sorted(before.keys() | after.keys()):
        old, new = before.get(file), after.get(file)
        if file in before and file in after and old == new:
            continue
        status = "added" if file not in before else "removed" if file not in after else "changed"
        doc = new if file in after else old
        name = doc.get("name") if isinstance(doc, dict) and isinstance(doc.get("name"), str) else file[:-5]
        was, now = operations(old), operations(new)
        changes.append(Change(name, status, len(was), len(now), tuple(sorted(set(now) - set(was))),
                              tuple(sorted(set(was) - set(now)))))
    return changes


def _held(docs: dict[str, object], key: str) -> set[str]:
    return {x for d in docs.values() if isinstance(d, dict) for x in (d.get(key) or []) if isinstance(x, str)}


def trust_changes(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """What the change asks of the one-time steps a person does (haymaker/trust.py): a role no scenario held
    before widens what the run deployer's condition must allow; a new Graph permission needs grants."""
    lines = [f"The run deployer must now be allowed to assign **{role}**: no scenario held it before. A person "
             "assigns its role again with the condition `haymaker platform bootstrap --print` (step 4) prints; until "
             "then `haymaker doctor` fails and runs naming the scenario are refused."
             for role in sorted(_held(after, "azure_roles") - _held(before, "azure_roles"))]
    lines += [f"Graph permission **{perm}** is new to the catalog: release the platform, then a Privileged Role "
              "Administrator runs what `haymaker platform grants` prints."
              for perm in sorted(_held(after, "graph_permissions") - _held(before, "graph_permissions"))]
    return lines


def markdown(changes: list[Change], base: str, trust: list[str] = ()) -> str:
    title = "### What this change does to the Activity Log"
    if not changes:
        return f"{title}\n\nNo scenario file differs from `{base}`.\n"
    lines = [title, "",
             f"Expected ARM operations per changed scenario (one pass of its steps; operate steps repeat "
             f"during a run), against `{base}`.", "",
             "| scenario | change | expected ops | new operations | no longer expected |", "|---|---|---:|---|---|"]
    for c in changes[:MOST_ROWS]:
        lines.append(f"| `{c.name}` | {c.status} | {c.before} → {c.after} | {_ops(c.new)} | {_ops(c.gone)} |")
    if len(changes) > MOST_ROWS:  # a PR comment has room for about 64 KB, the plan included
        lines += ["", f"_…and {len(changes) - MOST_ROWS} more: `haymaker scenarios diff --base {base}` lists them all._"]
    for line in trust:
        lines += ["", f"> {line}"]
    return "\n".join(lines) + "\n"


def _ops(ops: tuple[str, ...], most: int = 5) -> str:
    if not ops:
        return ""
    shown = ", ".join(f"`{op}`" for op in ops[:most])
    return shown + (f" and {len(ops) - most} more" if len(ops) > most else "")
