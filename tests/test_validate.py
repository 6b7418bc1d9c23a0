"""`haymaker scenarios validate` checks everything a pull request can change, and says what it skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from haymaker import azparse
from haymaker.cli import main
from scenarios.catalog import scenario_files

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "repo" / "scenarios"


@pytest.fixture
def no_azcli(monkeypatch, tmp_path):
    monkeypatch.setattr(azparse, "AZ_PYTHON", tmp_path / "no-azcli" / "python")


def validate(capsys, *args) -> tuple[int, str, str]:
    code = main(["scenarios", "validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def copy(tmp_path: Path, source: str, name: str, edit=lambda text: text) -> Path:
    text = (FIXTURE / f"{source}.yaml").read_text().replace(f"name: {source}", f"name: {name}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(edit(text))
    return path


def selection(tmp_path: Path, **changes) -> Path:
    doc = yaml.safe_load((Path(__file__).resolve().parent.parent / "scenarios" / "selection.yaml").read_text())
    doc.update(changes)
    path = tmp_path / "selection.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_catalog_passes_every_check(capsys, no_azcli):
    code, out, err = validate(capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{len(scenario_files())} scenario files valid"
    assert lines[1].startswith("scenarios/selection.yaml valid: every size can be drawn within the budget of $")
    assert lines[2] == "every scenario passes every mandatory policy in dev, prod, staging"
    assert err == "az commands not checked: no local Azure CLI (.azcli): run `bash scripts/azcli.sh` to check them\n"


def test_a_broken_selection_fails_it(capsys, tmp_path, no_azcli):
    broken = selection(tmp_path, pins=["compute-01-linux-vm"], sizes={"small": 5, "medium": 15})
    code, out, err = validate(capsys, "--selection", str(broken))
    assert code == 1 and out == ""
    assert f"{broken}: sizes: 'large' is a required property" in err and err.endswith("1 problem(s) found\n")


def test_a_budget_under_the_dearest_large_run_fails_it(capsys, tmp_path, no_azcli):
    code, _, err = validate(capsys, "--selection", str(selection(tmp_path, budget_usd=1)))
    assert code == 1
    large = next(line for line in err.splitlines() if ": a large run can cost $" in line)
    assert " in dev, prod, staging: " in large and "raise budget_usd to at least " in large


def test_a_scenario_in_a_location_no_environment_allows_fails_it(capsys, tmp_path, no_azcli):
    path = copy(tmp_path, "webapps-04-static-web-apps", "webapps-07-nowhere-site",
                lambda text: text.replace("westeurope", "nowhere1"))
    code, _, err = validate(capsys, str(path))
    assert code == 1
    assert err.splitlines()[-2] == (
        "webapps-07-nowhere-site in dev, prod, staging: allowed-locations: scenario webapps-07-nowhere-site names "
        "location 'nowhere1' in its steps, which this environment does not allow: add it to allowed-locations "
        "scenarioLocations in policies/config.<env>.json, or leave the scenario out")


def test_a_directory_object_no_cleanup_step_deletes_fails_it(capsys, tmp_path, no_azcli):
    def keep_report_export(text: str) -> str:
        start = text.index("    - name: delete-app-report-export")
        end = text.index("\n    - ", start + 1) if "\n    - " in text[start + 1:] else len(text)
        return text[:start] + text[end + 1:]

    path = copy(tmp_path, "identity-01-service-principals", "identity-07-leaky-apps", keep_report_export)
    assert "delete-app-report-export" not in path.read_text()
    code, _, err = validate(capsys, str(path))
    assert code == 1
    lines = [line for line in err.splitlines() if "outlives the resource group" in line]
    assert [line.split(": ")[1] for line in lines] == ["phases.deploy[3].run", "phases.deploy[4].run"]
    assert lines[0].endswith("creates the directory object 'haymaker-${RUN_ID}-report-export' (app), which outlives "
                             "the resource group, but no cleanup step deletes it: add one such as "
                             "`az ad app delete --id api://${TENANT_ID}/haymaker-${RUN_ID}-report-export`")


def test_a_too_long_value_names_the_limit_and_quotes_a_short_excerpt(capsys, tmp_path, no_azcli):
    path = copy(tmp_path, "compute-01-linux-vm-web-server", "compute-01-linux-vm-web-server",
                lambda text: text.replace("title: ", "title: " + "x" * 175_000 + " ", 1))
    code, _, err = validate(capsys, str(path))
    (line,) = [line for line in err.splitlines() if ": title: " in line]
    assert code == 1 and len(line) < 300
    assert line.endswith(f"title: {175_000 + len(yaml.safe_load(path.read_text())['title']) - 175_000} characters, "
                         "over the limit of 80: shorten it ('" + "x" * 59 + "… "
                         f"({len(yaml.safe_load(path.read_text())['title'])} characters))")


def test_too_many_steps_names_the_limit_without_echoing_them(capsys, tmp_path, no_azcli):
    def many(text: str) -> str:
        doc = yaml.safe_load(text)
        doc["phases"]["operate"] = json.loads(json.dumps(doc["phases"]["operate"] * 20))  # no YAML aliases
        return yaml.safe_dump(doc)

    path = copy(tmp_path, "compute-01-linux-vm-web-server", "compute-01-linux-vm-web-server", many)
    code, _, err = validate(capsys, str(path))
    (line,) = [line for line in err.splitlines() if "phases.operate:" in line]
    assert code == 1 and line.endswith("items, over the limit of 40: keep at most 40") and len(line) < 200


def test_an_az_command_az_does_not_know_fails_it_with_the_local_cli(capsys, tmp_path):
    if azparse.skipped_because():
        pytest.fail("no Azure CLI for the parser: run `bash scripts/azcli.sh` (scripts/test.sh does)")
    path = copy(tmp_path, "compute-01-linux-vm-web-server", "compute-01-linux-vm-web-server",
                lambda text: text.replace("run: az network nsg create", "run: az network nsgg create"))
    code, _, err = validate(capsys, str(path))
    assert code == 1
    (line,) = [line for line in err.splitlines() if "az refuses it" in line]
    assert line.startswith(f"{path}: phases.deploy[1].run: az refuses it: ") and "nsgg" in line and len(line) < 400


def test_selection_goes_with_the_catalog_not_with_named_files(capsys, tmp_path, no_azcli):
    code, _, err = validate(capsys, str(FIXTURE / "compute-01-linux-vm-web-server.yaml"), "--selection",
                            str(FIXTURE / "selection.yaml"))
    assert code == 1 and "name no files with it" in err
