"""The `haymaker` command as a user runs it: exit codes, JSON keys, Markdown size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from haymaker.cli import main
from haymaker.plan import make_plan
from haymaker.render import markdown
from haymaker.selection import load_selection
from scenarios.catalog import load_catalog
from tests.conftest import RUN_ID

VM = "compute-01-linux-vm-web-server"


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_json_has_the_documented_keys(capsys):
    code, out, _ = run_cli(capsys, "plan", "--json", "--run-id", RUN_ID, "--size", "small")
    assert code == 0
    doc = json.loads(out)
    assert {"run", "scenarios", "resources_total", "cost", "critical_path_seconds", "policy"} <= set(doc)
    assert doc["run"]["run_id"] == RUN_ID and doc["run"]["environment"] == "dev"
    assert doc["run"]["duration_hours"] == 8 and doc["run"]["expires_at"] == "2026-11-21T14:00:00Z"
    assert len(doc["scenarios"]) == load_selection(load_catalog()).sizes["small"]
    for s in doc["scenarios"]:
        types = [r["type"] for r in s["resources"]]
        own = ("azuread:index/application:Application", "azuread:index/servicePrincipal:ServicePrincipal",
               "azuread:index/applicationPassword:ApplicationPassword")
        # A Graph scenario borrows a platform identity instead of getting an application of its own.
        borrowed = bool(load_catalog()[s["name"]].graph_permissions)
        for t in ("azure-native:resources:ResourceGroup", "azure-native:authorization:RoleAssignment",
                  "azure-native:app:Job", *(() if borrowed else own)):
            assert t in types, (s["name"], t)
        assert all(set(r) == {"type", "name", "physical_name"} for r in s["resources"])
    assert doc["resources_total"] == sum(len(s["resources"]) for s in doc["scenarios"]) + len(doc["run_resources"])
    assert doc["cost"]["usd"] > 0 and doc["critical_path_seconds"] > 0
    assert doc["policy"] == {"violations": []}
    assert "mock-credential" not in out and "[secret]" not in json.dumps(doc["scenarios"])


def test_plan_is_reproducible_for_a_run_id(capsys):
    _, first, _ = run_cli(capsys, "plan", "--json", "--run-id", RUN_ID)
    _, second, _ = run_cli(capsys, "plan", "--json", "--run-id", RUN_ID)
    a, b = json.loads(first), json.loads(second)
    assert [s["name"] for s in a["scenarios"]] == [s["name"] for s in b["scenarios"]]


def test_plan_on_demand_and_table(capsys):
    code, out, _ = run_cli(capsys, "plan", "-s", VM, "--duration", "2", "--run-id", RUN_ID)
    assert code == 0
    assert VM in out and "deploy critical path" in out and "resources: 8" in out


@pytest.mark.parametrize("args, message", [
    (["--duration", "12"], "use a whole number of hours from 1 to 10"),
    (["-s", "compute-01-linux-vm"], "did you mean compute-01-linux-vm-web-server"),
    (["--size", "huge"], "size 'huge' is unknown"),
    (["--run-id", "yesterday"], "run id 'yesterday' is not valid"),
    (["--environment", "qa"], "environment 'qa' is unknown: use one of dev, staging, prod"),
    (["--size", "small", "-s", VM], "give either --size"),
    (["--no-such-flag"], "No such option"),
])
def test_plan_invalid_input_exits_1_with_a_message(capsys, args, message):
    code, _, err = run_cli(capsys, "plan", *args)
    assert code == 1
    assert message in err and "Traceback" not in err


def test_plan_over_budget_exits_2(capsys, tmp_path):
    from scenarios import CATALOG_DIR

    doc = yaml.safe_load((CATALOG_DIR / "selection.yaml").read_text())
    tight = tmp_path / "selection.yaml"
    tight.write_text(yaml.safe_dump({**doc, "budget_usd": 0.01}))
    code, _, err = run_cli(capsys, "plan", "--run-id", RUN_ID, "--selection", str(tight))
    assert code == 2
    assert "over the budget of $0.01" in err


def test_markdown_for_the_whole_catalog_fits_a_pr_comment(catalog, settings, make_spec):
    plan = make_plan(make_spec(catalog.names()), settings, catalog, budget_usd=10_000)
    text = markdown(plan)
    assert len(text) < 60_000
    assert "```mermaid" in text
    assert all(f"\n| `{name}` | {catalog[name].area} |" in text for name in catalog.names())
    # more than the run-size policy allows (30) in one run: the comment says so
    assert ("| `run-scenario-limits` | `(stack)` | mandatory |" in text) == (len(catalog.names()) > 30)
    assert plan.to_json()["resources_total"] == len([r for r in plan.declared if r.custom])


def test_markdown_flag_writes_the_file(capsys, tmp_path):
    target = tmp_path / "plan.md"
    assert main(["plan", "--run-id", RUN_ID, "--json", "--markdown", str(target)]) == 0
    assert target.read_text().startswith(f"## HayMaker plan: run `{RUN_ID}` (dev)")


def test_critical_path_does_not_grow_with_scenarios(catalog, settings, make_spec):
    one = make_plan(make_spec(catalog.names()[:1]), settings, catalog, 10_000)
    many = make_plan(make_spec(catalog.names()[:30]), settings, catalog, 10_000)
    assert one.critical_path_seconds == many.critical_path_seconds > 0
    assert one.critical_path[-1].endswith("-job")


def test_scenarios_list_show(capsys):
    code, out, _ = run_cli(capsys, "scenarios", "list", "--area", "compute", "--json")
    assert code == 0 and len(json.loads(out)) == 5
    code, out, _ = run_cli(capsys, "scenarios", "show", VM)
    assert code == 0 and "Virtual Machine Contributor" in out and "az vm create" in out
    code, _, err = run_cli(capsys, "scenarios", "show", "compute-01")
    assert code == 1 and "unknown scenario 'compute-01'" in err
    code, _, err = run_cli(capsys, "scenarios", "list", "--area", "mainframe")
    assert code == 1 and "area 'mainframe' is unknown" in err


def test_console_script_runs_as_a_process():
    done = subprocess.run([sys.executable, "-m", "haymaker.cli", "plan", "--json", "-s", VM, "--run-id", RUN_ID],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["scenarios"][0]["name"] == VM


@pytest.mark.parametrize("tag, env", [("v1.2.3-dev", "dev"), ("v1.2.3-rc.4", "staging"), ("v1.2.3", "prod"),
                                      ("refs/tags/v10.0.0", "prod")])
def test_release_env_maps_tags(capsys, tag, env):
    code, out, _ = run_cli(capsys, "release-env", tag)
    assert code == 0 and out.strip() == env


@pytest.mark.parametrize("tag", ["v1.2", "1.2.3", "v1.2.3-beta", "v01.2.3", "v1.2.3-rc", "latest"])
def test_release_env_refuses_other_tags(capsys, tag):
    code, _, err = run_cli(capsys, "release-env", tag)
    assert code == 1 and "is not a release tag" in err
