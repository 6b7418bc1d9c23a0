"""The `haymaker` command. Exit codes: 0 ok, 1 invalid input, 2 refused by policy or budget."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from haymaker.errors import CatalogError, HayMakerError, Refused

app = typer.Typer(help="HayMaker: realistic, benign, attributable activity in an Azure tenant.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
scenarios_app = typer.Typer(help="The scenario catalog.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
policy_app = typer.Typer(help="The policy pack, offline.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _register_agent_commands() -> None:
    from haymaker.agent.cli import agent_app

    app.add_typer(agent_app, name="agent")


_register_agent_commands()

out = Console()
err = Console(stderr=True, soft_wrap=True)


def _emit_json(doc) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


@app.command()
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
) -> None:
    """Show what a run would create, its cost and deploy time, offline (no credentials needed)."""
    from haymaker.plan import plan_run
    from haymaker.render import markdown as to_markdown, print_table

    from haymaker.selection import SELECTION_FILE

    result = plan_run(environment=environment, size=size, scenarios=scenario, duration=duration,
                      run_id=run_id, trigger=trigger, selection_path=selection or SELECTION_FILE)
    if as_json:
        _emit_json(result.to_json())
    else:
        print_table(result, out)
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


@policy_app.command("check")
def policy_check(
    plan_file: Path = typer.Argument(..., help="A plan written by `haymaker plan --json`."),
    policy_config: Optional[Path] = typer.Option(None, help="Policy config (default: policies/config.<env>.json)."),
    as_json: bool = typer.Option(False, "--json", help="Write the violations as JSON."),
) -> None:
    """Re-check a saved plan against the policy pack: exit 2 on any mandatory violation."""
    from haymaker.errors import InvalidInput
    from haymaker.policycheck import recheck_plan

    try:
        doc = json.loads(plan_file.read_text())
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{plan_file}: cannot read a plan ({e}): write one with `haymaker plan --json > FILE`")
    violations = recheck_plan(doc, policy_config)
    if as_json:
        _emit_json({"violations": [v.as_dict() for v in violations]})
    report_violations(violations)
    if not as_json:
        out.print(f"policy: {len(doc.get('declared', []))} resources checked, "
                  f"{len(violations)} violation(s), none mandatory")


@scenarios_app.command("list")
def scenarios_list(
    area: Optional[str] = typer.Option(None, help="Only this area."),
    as_json: bool = typer.Option(False, "--json", help="Write JSON to stdout."),
) -> None:
    """List the catalog."""
    from haymaker.errors import InvalidInput
    from scenarios.catalog import AREAS, load_catalog

    if area is not None and area not in AREAS:
        raise InvalidInput(f"area {area!r} is unknown: use one of {', '.join(AREAS)}")
    items = load_catalog().by_area(area)
    if as_json:
        _emit_json([{"name": s.name, "area": s.area, "title": s.title,
                     "estimated_hourly_cost_usd": s.estimated_hourly_cost_usd} for s in items])
        return
    from rich.table import Table

    table = Table()
    for col in ("name", "area", "title", "USD/h", "roles"):
        table.add_column(col)
    for s in items:
        table.add_row(s.name, s.area, s.title, f"{s.estimated_hourly_cost_usd:.2f}", ", ".join(s.azure_roles))
    out.print(table)


@scenarios_app.command("show")
def scenarios_show(name: str, as_json: bool = typer.Option(False, "--json", help="Write JSON to stdout.")) -> None:
    """Show one scenario: its team, rights and steps."""
    from dataclasses import asdict

    from haymaker.errors import InvalidInput
    from haymaker.selection import unknown_name_message
    from scenarios.catalog import load_catalog

    catalog = load_catalog()
    if name not in catalog:
        raise InvalidInput(unknown_name_message(name, catalog))
    s = catalog[name]
    if as_json:
        _emit_json(asdict(s))
        return
    out.print(f"[bold]{s.name}[/bold] — {s.title} ({s.area})")
    out.print(s.description)
    c = s.company
    out.print(f"company: {c['name']} ({c['industry']}, {c['employees']} people), team {c['team']}")
    out.print(f"Azure roles at its resource group: {', '.join(s.azure_roles)}")
    if s.graph_permissions:
        out.print(f"Graph permissions: {', '.join(s.graph_permissions)}")
    out.print(f"services: {', '.join(s.services)}")
    out.print(f"agent: {s.cpu} vCPU, {s.memory}; scenario resources ~${s.estimated_hourly_cost_usd:.2f}/h")
    for phase, steps in s.phases.items():
        out.print(f"[bold]{phase}[/bold]")
        for step in steps:
            out.print(f"  {step.name}: {step.run}", markup=False, highlight=False)


@scenarios_app.command("validate")
def scenarios_validate(paths: List[Path] = typer.Argument(None, help="Files to check (default: the catalog).")) -> None:
    """Check scenario files; exit 1 listing every problem when any file is bad."""
    from scenarios.catalog import check_files, scenario_files

    files = list(paths) if paths else scenario_files()
    scenarios, errors = check_files(files)
    if errors:
        raise CatalogError(errors)
    out.print(f"{len(scenarios)} scenario files valid")


@app.command("release-env")
def release_env(tag: str = typer.Argument(..., help="A git tag such as v1.2.3-rc.1 or refs/tags/v1.2.3.")) -> None:
    """Print the environment a release tag deploys to (dev, staging or prod); refuse other tags."""
    from haymaker.release import release_environment

    out.print(release_environment(tag), markup=False, highlight=False)


def _register_operator_commands() -> None:
    from haymaker import cli_ops, ledger_cli

    cli_ops.register(app)
    ledger_cli.register(app)


_register_operator_commands()


def main(argv: list[str] | None = None, application: typer.Typer | None = None, prog_name: str = "haymaker") -> int:
    command = typer.main.get_command(application or app)
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=True)
        return 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        return 1 if code == 2 else code  # click exits 2 on a bad flag; here 2 means refused
    except CatalogError as e:
        for line in e.errors:
            err.print(line, markup=False, highlight=False)
        err.print(f"{len(e.errors)} problem(s) found", markup=False)
        return e.exit_code
    except HayMakerError as e:
        err.print(f"error: {e}", markup=False, highlight=False)
        return e.exit_code


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
