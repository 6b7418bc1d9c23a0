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


def test_a_role_or_graph_permission_new_to_the_catalog_shows_what_a_person_must_grant(pr, capsys):
    """Derived from the catalog: the run deployer's condition must allow each role a scenario holds, so a role
    no scenario held before is named in the PR, with the step that grants it."""
    import yaml

    from haymaker.catalogdiff import trust_changes

    vm = pr / VM
    doc = yaml.safe_load(vm.read_text())
    held = {r for f in pr.glob("*.yaml") if f.name != "selection.yaml"
            for r in (yaml.safe_load(f.read_text()).get("azure_roles") or [])}
    new_role = next(r for r in ("DNS Zone Contributor", "Backup Contributor", "Search Service Contributor")
                    if r not in held)
    doc["azure_roles"] = list(doc["azure_roles"]) + [new_role]
    doc["graph_permissions"] = ["User.Read.All"]
    vm.write_text(yaml.safe_dump(doc, sort_keys=False))
    before, after = base_documents("HEAD"), head_documents()
    lines = trust_changes(before, after)
    assert f"The run deployer must now be allowed to assign **{new_role}**: no scenario held it before." \
           in " ".join(lines)
    assert any("Graph permission **User.Read.All** is new to the catalog" in line for line in lines)
    text = markdown(compare(before, after), "HEAD", lines)
    assert f"> The run deployer must now be allowed to assign **{new_role}**" in text
    assert "`haymaker platform bootstrap --print` (step 4)" in text
    # A role some scenario already held asks nothing.
    assert not trust_changes(after, after)
    code = main(["scenarios", "diff", "--base", "HEAD", "--json"])
    assert code == 0 and len(json.loads(capsys.readouterr().out)["one_time_steps"]) == len(lines)
