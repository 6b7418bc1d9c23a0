"""`haymaker scenarios diff`: what a catalog change does to the Activity Log, for the PR comment."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from haymaker import catalogdiff
from haymaker.catalogdiff import base_documents, compare, head_documents, markdown
from haymaker.cli import main
from scenarios import CATALOG_DIR

VM = "compute-01-linux-vm-web-server.yaml"
NSG = "security-03-network-security-groups.yaml"
STATIC = "webapps-01-static-website.yaml"


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def pr(tmp_path, monkeypatch):
    """A repository whose catalog a PR changed: one new step in the VM scenario, the NSG scenario
    removed, the static website added. The command reads it as it reads the project's catalog."""
    catalog = tmp_path / "scenarios"
    catalog.mkdir()
    for name in (VM, NSG, "selection.yaml"):
        shutil.copy(CATALOG_DIR / name, catalog / name)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    vm = (catalog / VM).read_text()
    step = ("    - name: restart-web-vm\n      cadence: weekly\n      run: az vm restart --resource-group "
            "${RESOURCE_GROUP} --name vm-web-${UNIQUE}\n      expect: [Microsoft.Compute/virtualMachines/restart/action]\n")
    (catalog / VM).write_text(vm.replace("  cleanup:\n", step + "  cleanup:\n", 1))
    (catalog / NSG).unlink()
    shutil.copy(CATALOG_DIR / STATIC, catalog / STATIC)
    monkeypatch.setattr(catalogdiff, "CATALOG_DIR", catalog)
    return catalog


def test_a_pr_that_adds_changes_and_removes_scenarios(pr):
    changes = {c.name: c for c in compare(base_documents("HEAD"), head_documents())}
    assert set(changes) == {VM[:-5], NSG[:-5], STATIC[:-5]}  # selection.yaml is not a scenario
    vm_change = changes[VM[:-5]]
    assert (vm_change.status, vm_change.after - vm_change.before) == ("changed", 1)
    assert vm_change.new == ("Microsoft.Compute/virtualMachines/restart/action",) and vm_change.gone == ()
    nsg = changes[NSG[:-5]]
    assert (nsg.status, nsg.after, nsg.new) == ("removed", 0, ()) and nsg.before > 0 and nsg.gone
    static = changes[STATIC[:-5]]
    assert (static.status, static.before) == ("added", 0) and static.after > 0 and not static.gone

    text = markdown(list(changes.values()), "HEAD")
    assert f"| `{VM[:-5]}` | changed | {vm_change.before} → {vm_change.after} | " \
           "`Microsoft.Compute/virtualMachines/restart/action` |  |" in text
    assert markdown([], "origin/main").endswith("No scenario file differs from `origin/main`.\n")


def test_a_base_the_clone_does_not_have_says_how_to_fetch_it(pr, capsys):
    code = main(["scenarios", "diff", "--base", "no-such-revision", "--json"])
    err = capsys.readouterr().err
    assert code == 1 and "revision 'no-such-revision' is not in this clone" in err and "fetch-depth: 2" in err


def test_the_command_writes_the_pr_section_and_json(pr, tmp_path, capsys):
    section = tmp_path / "changes.md"
    code = main(["scenarios", "diff", "--base", "HEAD", "--markdown", str(section), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and [(c["scenario"], c["status"]) for c in doc["changes"]] == [
        (VM[:-5], "changed"), (NSG[:-5], "removed"), (STATIC[:-5], "added")]
    assert section.read_text().startswith("### What this change does to the Activity Log")


def test_outside_a_git_clone_it_says_so(tmp_path, monkeypatch, capsys):
    catalog = tmp_path / "scenarios"
    catalog.mkdir()
    shutil.copy(CATALOG_DIR / VM, catalog / VM)
    monkeypatch.setattr(catalogdiff, "CATALOG_DIR", catalog)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above it either
    assert main(["scenarios", "diff", "--base", "HEAD^1"]) == 1
    assert "is not in a git clone, so there is no 'HEAD^1' to compare with" in capsys.readouterr().err
