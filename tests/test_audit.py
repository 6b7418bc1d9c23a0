"""The `audit:` field: the Entra audit activities a directory-plane step declares, checked against the
activity reference (scenarios/audit.py). Tests use their own fixture scenario, not the catalog's content."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.audit import ACTIVITIES, KNOWN, fold
from scenarios.catalog import check_file, load_catalog
from scenarios.expect import changes_something
from scenarios.steps import split_step

FIXTURE = Path(__file__).parent / "fixtures" / "scenarios" / "identity-91-directory-fixture.yaml"


def problems(tmp_path, old: str, new: str) -> list[str]:
    text = FIXTURE.read_text()
    assert old in text, old
    path = tmp_path / FIXTURE.name
    path.write_text(text.replace(old, new, 1))
    return check_file(path)[1]


def test_the_fixture_loads_with_its_audit_activities():
    scenario, found = check_file(FIXTURE)
    assert found == []
    steps = {s.name: s for phase in scenario.phases.values() for s in phase}
    assert steps["register-app"].audit == ("Add application",) and steps["create-notes-storage"].audit == ()


@pytest.mark.parametrize("old, new, message", [
    ('      plane: graph\n      audit: ["Add application"]\n', "      plane: graph\n",
     "phases.deploy[1].audit: 'az ad app create' changes the directory but declares no audit: add audit:"),
    ('audit: ["Add application"]', 'audit: ["Add app"]',
     "phases.deploy[1].audit[0]: unknown Entra audit activity 'Add app': use the activity as Entra logs it"),
    ('audit: ["Add application"]', 'audit: ["Add aplication"]', "did you mean 'Add application'"),
    ("expect: [Microsoft.Storage/storageAccounts/write]\n    - name: register-app",
     'expect: [Microsoft.Storage/storageAccounts/write]\n      audit: ["Add group"]\n    - name: register-app',
     "phases.deploy[0].audit: 'az storage account create' does not act on Microsoft Graph"),
    ("--id api://${TENANT_ID}/haymaker-${RUN_ID}-fixture\n    - name: annotate-app",
     '--id api://${TENANT_ID}/haymaker-${RUN_ID}-fixture\n      audit: ["Update application"]\n'
     "    - name: annotate-app", "phases.operate[0].audit: 'az ad app show' only reads"),
], ids=["missing", "unknown", "close-match", "arm-step", "read-step"])
def test_bad_audit_declarations_are_refused_with_what_to_change(tmp_path, old, new, message):
    found = problems(tmp_path, old, new)
    assert any(message in p for p in found), found


def test_entras_spelling_variants_are_the_same_activity(tmp_path):
    # Logs carry an en dash (and a trailing space) where the reference writes a hyphen; case does not count.
    assert problems(tmp_path, '"Update application - Certificates and secrets management"',
                    '"update application \u2013 certificates and secrets management "') == []
    assert fold("Update application \u2013 Certificates and secrets management ") == fold(
        "Update application - Certificates and secrets management")


def test_a_mistake_refused_before_it_reaches_graph_may_declare_no_activity(tmp_path):
    mistake = ('    - name: annotate-app\n      expect_failure: true\n      cadence: rare\n'
               '      run: az ad app update --id api://${TENANT_ID}/haymaker-${RUN_ID}-fixture --set "notes=fixture"\n'
               '      plane: graph\n      audit: []\n')
    old = ('    - name: annotate-app\n      run: az ad app update --id api://${TENANT_ID}/haymaker-${RUN_ID}-fixture '
           '--set "notes=fixture"\n      plane: graph\n      audit: ["Update application"]\n')
    assert problems(tmp_path, old, mistake) == []


def test_the_schema_wants_a_list_of_names(tmp_path):
    found = problems(tmp_path, 'audit: ["Add application"]', "audit: Add application")
    assert any("phases.deploy[1].audit: 'Add application' is not of type 'array'" in p for p in found), found


def test_the_activity_list_is_one_spelling_per_activity():
    names = [n for group in ACTIVITIES.values() for n in group]
    assert len(KNOWN) == len(names)  # no two entries fold to the same name


def test_every_directory_change_in_the_catalog_declares_known_activities():
    """An invariant over whatever the catalog holds (the loader refuses otherwise; this says it plainly)."""
    for scenario in load_catalog().scenarios.values():
        for phase in scenario.phases.values():
            for step in phase:
                if step.plane == "graph" and changes_something(split_step(step.run)) and not step.expect_failure:
                    assert step.audit and all(fold(a) in KNOWN for a in step.audit), (scenario.name, step.name)
                if step.plane != "graph":
                    assert step.audit == (), (scenario.name, step.name)
