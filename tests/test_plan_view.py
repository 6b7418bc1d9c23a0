"""`haymaker plan` as a person reads it: one row per scenario that fits the terminal, never a wrapped cell."""

from __future__ import annotations

import dataclasses
import io
import random
from pathlib import Path

import pytest
from rich.console import Console

from haymaker.cli import main
from haymaker.deploytime import critical_path
from haymaker.plan import plan_run
from haymaker.policycheck import Violation
from haymaker.plan import resource_json
from haymaker.render import SUMMARY_COLUMNS, print_summary, resource_tree
from tests.conftest import RUN_ID

# A small run of the fixture repository (never the project's catalog or selection, which PRs change): its
# selection pins the longest name of its catalog (36 characters) and picks five.
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "repo" / "scenarios"
LONGEST = "security-05-security-center-policies"


@pytest.fixture(scope="module")
def small_plan():
    return plan_run(size="small", run_id=RUN_ID, catalog_dir=FIXTURE, selection_path=FIXTURE / "selection.yaml")


def screen(plan, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    print_summary(plan, console)
    return console.file.getvalue().splitlines()


def rows(plan, lines: list[str]) -> list[str]:
    """The table's body: the lines between the header rule and the footer."""
    start = next(i for i, line in enumerate(lines) if set(line) == {"─"}) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("resources: "))
    return lines[start:end]


@pytest.mark.parametrize("width, header_lines", [(80, 2), (120, 1)])
def test_five_scenarios_fit_one_screen_without_a_wrapped_cell(small_plan, width, header_lines):
    lines = screen(small_plan, width)
    assert max(len(line) for line in lines) <= width
    assert lines[0].startswith(f"Run {RUN_ID} · environment dev · size small · 5 scenarios · 8 h")
    assert " · ".join(lines[:header_lines]).endswith("expires 2026-11-21T14:00:00Z")
    header = lines[header_lines].split()
    assert header[0] == "scenario" and header[-1] == "USD" and set(header) <= set(SUMMARY_COLUMNS)
    body = rows(small_plan, lines)
    assert len(body) == 5  # a wrapped cell would add a line
    for line, name, cost in zip(body, small_plan.spec.scenarios, small_plan.costs):
        assert line.startswith(f"{name} ") and line.endswith(f"{cost.total_usd:.2f}")
    footer = lines[next(i for i, line in enumerate(lines) if line.startswith("resources: ")):]
    assert footer[-1] == "policy: no violations"
    assert f"resources: {len(small_plan.custom_resources)}" in footer[0]
    assert f"cost: ${small_plan.cost_usd:.2f} of $100.00 budget (agents $" in " ".join(footer[:2])
    path = " ".join(footer[:-1]).split("deploy critical path: ~90 s (", 1)[1]  # wrapped between parts, not cut
    owner = next(n for n in small_plan.spec.scenarios if small_plan.critical_path[0].startswith(f"{n}-"))
    assert path.startswith(f"{owner}: ") and path.endswith(f"-> {small_plan.critical_path[-1].rsplit('-', 1)[-1]})")
    assert "…" not in path
    assert len(lines) <= 25


@pytest.fixture(scope="module")
def longest_names_plan(catalog):
    """The five longest scenario names of whatever the catalog holds, in one plan."""
    names = sorted(catalog.names(), key=lambda n: (-len(n), n))[:5]
    return plan_run(scenarios=names, run_id=RUN_ID)


@pytest.mark.parametrize("width", [80, 120])
def test_no_scenario_name_is_ever_cut(longest_names_plan, width):
    """The name one types into --scenario stays whole; roles shorten and the job column goes first."""
    body = rows(longest_names_plan, screen(longest_names_plan, width))
    for line, name in zip(body, longest_names_plan.spec.scenarios):
        assert line.split()[0] == name
    assert max(len(line) for line in body) <= max(width, max(len(n) for n in longest_names_plan.spec.scenarios))


def test_at_120_columns_names_and_job_names_are_whole(small_plan):
    body = rows(small_plan, screen(small_plan, 120))
    for line, name in zip(body, small_plan.spec.scenarios):
        job = next(r.inputs["jobName"] for r in small_plan.resources_of(name) if r.type == "azure-native:app:Job")
        assert line.split()[0] == name and f" {job} " in line


def test_one_scenario_on_demand(capsys):
    vm = "compute-01-linux-vm-web-server"
    assert main(["plan", "-s", vm, "--run-id", RUN_ID]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "on demand · 1 scenario · 8 h" in lines[0]
    assert [line for line in lines if line.startswith(vm)] != []
    assert any(line.startswith("resources: 8") for line in lines)


def test_piped_plan_rows_are_tab_separated_and_whole(capsys):
    """Not a terminal (a pipe, CI): every column of every scenario, tab-separated, nothing shortened."""
    expected = plan_run(size="small", run_id=RUN_ID)  # what the project's selection picks, whatever it is
    assert main(["plan", "--size", "small", "--run-id", RUN_ID]) == 0
    out = capsys.readouterr().out.splitlines()
    tabbed = [line.split("\t") for line in out if "\t" in line]
    assert [r[0] for r in tabbed] == list(expected.spec.scenarios)
    assert all(len(r) == len(SUMMARY_COLUMNS) and r[3] == ", ".join(expected.catalog[r[0]].azure_roles)
               and r[4].startswith("hm-") for r in tabbed)


@pytest.mark.parametrize("width", [80, 120])
def test_resources_are_a_tree_with_every_azure_name_whole(small_plan, width):
    lines = resource_tree(small_plan, width)
    assert max(len(line) for line in lines) <= width
    assert lines[0] == small_plan.spec.stack_name  # the run's own resources first
    for name in small_plan.spec.scenarios:
        assert name in lines
    shown = [line.split()[-1] for line in lines]
    for d in small_plan.custom_resources:
        physical = resource_json(d)["physical_name"]
        if physical:
            assert physical in shown, physical
    assert not any("…" in line for line in lines)


def test_resources_flag_shows_one_row_per_resource(capsys):
    expected = plan_run(size="small", run_id=RUN_ID)  # what the project's selection picks, whatever it is
    for flag in ("--resources", "-v"):
        assert main(["plan", "--size", "small", "--run-id", RUN_ID, flag]) == 0
        rows_ = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
        assert len(rows_) == len(expected.custom_resources) and all(len(r) == 4 for r in rows_)
        assert {r[0] for r in rows_} == {expected.spec.stack_name, *expected.spec.scenarios}
        assert "credential" in {r[1] for r in rows_}
    assert main(["plan", "--size", "small", "--run-id", RUN_ID]) == 0
    assert "credential" not in capsys.readouterr().out


def test_the_footer_says_when_the_run_is_refused(small_plan):
    mandatory = Violation("run-scenario-limits", "(stack)", "too many", "mandatory")
    advisory = Violation("run-cost-warning", "(stack)", "costly", "advisory")
    over = dataclasses.replace(small_plan, budget_usd=1.0, violations=[mandatory, advisory])
    footer = screen(over, 120)[-3:]
    assert footer[0].startswith(f"resources: {len(small_plan.custom_resources)}   cost: ${small_plan.cost_usd:.2f} "
                                "is over the $1.00 budget")
    assert footer[-1] == "policy: refused, 1 mandatory violation(s) and 1 warning(s) (listed below)"
    warned = dataclasses.replace(small_plan, violations=[advisory])
    assert screen(warned, 120)[-1] == "policy: passed with 1 warning(s) (listed below)"


def test_the_critical_path_is_the_same_whatever_the_registration_order(small_plan):
    """The mock runtime registers resources in no fixed order; the plan must read the same every time."""
    expected = critical_path(small_plan.declared)
    rng = random.Random(3)
    for _ in range(5):
        shuffled = [dataclasses.replace(d, dependencies=rng.sample(d.dependencies, len(d.dependencies)))
                    for d in rng.sample(small_plan.declared, len(small_plan.declared))]
        assert critical_path(shuffled) == expected


def test_plan_leaves_the_garbage_collector_as_it_found_it(capsys):
    """The plan pauses cyclic collection for speed (haymaker/gcpause.py); a long-lived caller keeps its own."""
    import gc

    assert gc.isenabled()
    assert main(["plan", "--size", "small", "--run-id", RUN_ID, "--json"]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["plan", "--size", "small", "--run-id", RUN_ID, "--json"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    capsys.readouterr()
