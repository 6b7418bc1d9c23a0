"""The pull-request journey as a user walks it, in a copy of this repository: edit scenarios/selection.yaml,
render the comment with `haymaker pr` (what pr.yml posts), read what it shows; a breaking edit fails the
check naming the scenario, the environments and the fix. And the routine edits keep the tests green."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from haymaker.draws import read_tree, worst_draws

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "repo" / "scenarios"
NOT_COPIED = (".git", ".venv", ".azcli", "node_modules", "__pycache__", ".pulumi", ".pulumi-state", ".azurite",
              ".haymaker", ".pytest_cache", "Pulumi.run-*.yaml", "*.plan.json", "*.plan.md", "plan.json", "plan.md")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def clone(tmp_path) -> Path:
    """The repository's files (tracked and untracked, not the ignored ones) in a git repository of their own,
    committed: a fresh clone to open a pull request from. Its own modules run (PYTHONPATH), with this .venv."""
    copy = tmp_path / "haymaker"
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True)
    if listed.returncode == 0:
        copy.mkdir()
        packed = subprocess.run(["tar", "--null", "--files-from=-", "--ignore-failed-read", "-cf", "-"], cwd=ROOT,
                                input=listed.stdout, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-xf", "-", "-C", str(copy)], input=packed, check=True)
    else:  # a copy that is not a clone (scripts/test_lowest.sh, scripts/catalog_edits.sh): its files but the tools
        shutil.copytree(ROOT, copy, symlinks=True, ignore=shutil.ignore_patterns(*NOT_COPIED))
    git(copy, "init", "-q")
    git(copy, "add", ".")
    git(copy, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "main")
    return copy


def haymaker(copy: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "haymaker.cli", *args], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=600)


def edit_selection(copy: Path, **changes) -> None:
    path = copy / "scenarios" / "selection.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_selection_pr_shows_the_pool_change_and_the_dearest_draws_and_a_breaking_one_fails(clone):
    tree = read_tree(clone)
    large = next(d for d in worst_draws(tree.catalog, tree.selection, "dev", tree.settings["dev"])
                 if d.kind == "large")
    dropped = next(n for n in large.scenarios if n not in tree.selection.pins)  # the dearest a run can draw

    # 1. Exclude the dearest scenario: the comment shows it leave the pool, and the dearest draws get cheaper.
    edit_selection(clone, exclude=[*tree.selection.exclude, dropped])
    done = haymaker(clone, "pr", "--base", "HEAD", "--markdown", "pr.md")
    assert done.returncode == 0, done.stderr
    comment = (clone / "pr.md").read_text()
    assert done.stdout.rstrip("\n") == comment.rstrip("\n")  # the same comment, on the terminal and in the file
    assert comment.startswith("<!-- haymaker-plan -->\n")  # the marker pr.yml finds its comment by
    assert f"No longer drawn by scheduled runs: `{dropped}`." in comment
    count = len([n for n in tree.catalog.names() if n not in tree.selection.exclude])
    assert f"| scheduled candidates (pinned) | {count} ({len(tree.selection.pins)}) | {count - 1} (" in comment
    row = next(line for line in comment.splitlines() if line.startswith(f"| large ({tree.selection.sizes['large']}) |"))
    assert f"${large.cost_usd:,.2f} → $" in row
    assert "**Every scheduled and dispatched run still works**" in comment

    # 2. A budget no large run fits and a scenario in a location no environment allows: the check fails.
    edit_selection(clone, budget_usd=1)
    # The new scenario: the fixture's static web app (a service offered in one location), moved to one no
    # environment allows.
    template = (FIXTURE / "webapps-04-static-web-apps.yaml").read_text()
    (clone / "scenarios" / "webapps-98-far-site.yaml").write_text(
        template.replace("name: webapps-04-static-web-apps", "name: webapps-98-far-site").replace("westeurope", "nowhere1"))
    done = haymaker(clone, "pr", "--base", "HEAD", "--markdown", "pr.md")
    assert done.returncode == 2, done.stderr
    comment = (clone / "pr.md").read_text()
    assert "**This change would make runs fail:" in comment
    problems = done.stderr.splitlines()
    edited = read_tree(clone)
    dearest = next(d for d in worst_draws(edited.catalog, edited.selection, "dev", edited.settings["dev"])
                   if d.kind == "large").scenarios[0]  # the dearest now that `dropped` is out
    assert any(line.startswith(f"{dearest} in dev, prod, staging: a large run can cost $")
               and "raise budget_usd to at least " in line for line in problems), problems
    assert "webapps-98-far-site in dev, prod, staging: allowed-locations: scenario webapps-98-far-site names " \
           "location 'nowhere1' in its steps, which this environment does not allow: add it to allowed-locations " \
           "scenarioLocations in policies/config.<env>.json, or leave the scenario out" in problems
    assert problems[-1].startswith("error: ") and "Traceback" not in done.stderr

    # 3. A selection that does not load: exit 1, the comment says what is wrong.
    (clone / "scenarios" / "webapps-98-far-site.yaml").unlink()
    edit_selection(clone, budget_usd=tree.selection.budget_usd, pins=["no-such-scenario"])
    done = haymaker(clone, "pr", "--base", "HEAD", "--markdown", "pr.md")
    assert done.returncode == 1
    assert "- `scenarios/selection.yaml`: pins[0]: unknown scenario 'no-such-scenario'" in (clone / "pr.md").read_text()


ROUTINE_EDITS_TESTS = [  # each failed after one of the routine edits before its rewrite (finding 1 of issue 18)
    "tests/test_agent_schedule.py::test_every_placeholder_of_every_scenario_renders",
    "tests/test_catalog.py::test_every_catalog_file_is_a_valid_scenario_of_a_known_area",
    "tests/test_cli.py::test_plan_json_has_the_documented_keys",
    "tests/test_cli.py::test_plan_over_budget_exits_2",
    "tests/test_dispatch.py::test_dispatch_sends_run_yml_its_inputs_and_prints_the_run_url",
    "tests/test_plan_view.py",
    "tests/test_policies.py::test_plans_of_every_catalog_scenario_pass_every_mandatory_policy",
    "tests/test_validate.py::test_the_catalog_passes_every_check",
]


def test_routine_edits_keep_the_tests_that_read_the_catalog_green(clone):
    """A valid scenario added, the dearest excluded and the budget lowered to the least that admits a large
    run, all at once (scripts/catalog_edits.sh runs the whole suite after each)."""
    env = {**os.environ, "PYTHONPATH": str(clone)}
    edits = subprocess.run([sys.executable, "scripts/catalog_edit.py", "add", "exclude", "budget"], cwd=clone,
                           env=env, capture_output=True, text=True, timeout=300)
    assert edits.returncode == 0, edits.stderr
    changed = git(clone, "status", "--porcelain", "scenarios").splitlines()
    assert " M scenarios/selection.yaml" in changed and len(changed) == 2, changed  # and one new scenario file
    (clone / ".azcli").symlink_to(ROOT / ".azcli") if (ROOT / ".azcli").exists() else None
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                          *ROUTINE_EDITS_TESTS], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
