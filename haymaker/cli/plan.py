"""`haymaker plan`, and the refusal gate it shares with `haymaker up` and `haymaker policy check`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from haymaker.cli.common import emit_json, err, out
from haymaker.errors import Refused


def plan(
    size: Optional[str] = typer.Option(None, help="Simulation size of a scheduled pick: small, medium or large "
                                                  "(default: the environment's haymaker:simulationSize)."),
    scenario: List[str] = typer.Option([], "--scenario", "-s", help="Name a scenario (1-5) for an on-demand run."),
    duration: Optional[int] = typer.Option(None, help="Hours the agents work (1-10; default from selection.yaml)."),
    run_id: Optional[str] = typer.Option(None, help="Run id such as 20261121t0600z-7f3a (default: new)."),
    environment: str = typer.Option("dev", "--environment", "-e", help="Environment whose Pulumi.<env>.yaml to use."),
    trigger: str = typer.Option("local", help="schedule, release, dispatch or local."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
    markdown: Optional[Path] = typer.Option(None, help="Also write a pull-request comment to this file."),
    write_stack_config: bool = typer.Option(False, help="Also write Pulumi.run-<run_id>.yaml for `pulumi up`."),
    selection: Optional[Path] = typer.Option(None, help="Selection file (default: scenarios/selection.yaml)."),
    resources: bool = typer.Option(False, "--resources", "-v", help="One row per resource instead of per scenario."),
) -> None:
    """Show what a run would create, its cost and deploy time, offline (no credentials needed)."""
    from haymaker.gcpause import paused_gc

    with paused_gc():  # the imports and the plan: see paused_gc
        from haymaker.plan import plan_run
        from haymaker.render import markdown as to_markdown, print_summary, print_table
        from haymaker.selection import SELECTION_FILE

        result = plan_run(environment=environment, size=size, scenarios=scenario, duration=duration,
                          run_id=run_id, trigger=trigger, selection_path=selection or SELECTION_FILE)
    if as_json:
        emit_json(result.to_json())
    elif resources:
        print_table(result, out)
    else:
        print_summary(result, out)
    if markdown:
        markdown.write_text(to_markdown(result))
    refuse_unless_allowed(result)
    if write_stack_config:
        from haymaker.stackconfig import write_run_stack_config

        path = write_run_stack_config(result.spec, result.settings)
        err.print(f"wrote {path.name}: deploy with `pulumi stack init {result.spec.stack_name}` and "
                  f"`pulumi up --stack {result.spec.stack_name}`")


def refuse_unless_allowed(plan) -> None:
    """The gate `plan` and `up` share: mandatory policy violations, then the budget (exit 2)."""
    report_violations(plan.violations)
    if plan.over_budget:
        raise Refused(f"estimated cost ${plan.cost_usd:.2f} is over the budget of ${plan.budget_usd:.2f} "
                      "in scenarios/selection.yaml: pick fewer or cheaper scenarios, shorten the duration, "
                      "or raise budget_usd by pull request")


def report_violations(violations) -> None:
    """Advisory ones are warnings; any mandatory one refuses the run (exit 2)."""
    for v in violations:
        if v.enforcement == "advisory":
            err.print(f"warning: {v.line()}", markup=False, highlight=False)
    mandatory = [v for v in violations if v.enforcement == "mandatory"]
    for v in mandatory:
        err.print(v.line(), markup=False, highlight=False)
    if mandatory:
        raise Refused(f"{len(mandatory)} mandatory policy violation(s): fix them, then plan again")
