"""``haymaker agent plan|run``. The image's ENTRYPOINT is ``haymaker agent run``."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Optional

import typer

from haymaker.cli.common import CONTEXT, cfg_and_environment, emit_json, run_app
from haymaker.errors import InvalidInput
from haymaker.runspec import DEFAULT_DURATION_HOURS, check_duration, iso, new_run_id

app = typer.Typer(help="The agent that lives one scenario's working day (it runs in the agent image).",
                  no_args_is_help=True, context_settings=CONTEXT)


@app.command("plan")
def plan(
    scenario: str = typer.Argument(..., help="The scenario whose day to show."),
    run_id: Optional[str] = typer.Option(None, help="Run id such as 20261121t0600z-7f3a (default: new)."),
    duration: Optional[int] = typer.Option(None, help="Hours the run lasts (1-10; default from selection.yaml)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the operate times (default: from run id and scenario)."),
    environment: Optional[str] = typer.Option(None, "--environment", "-e",
                                              help="dev, staging or prod, whose settings to use (default: "
                                                   "HAYMAKER_ENVIRONMENT, then `haymaker config`, then dev)."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
) -> None:
    """Show when each step would run and the command it runs, without running anything."""
    from haymaker.agent.plan import plan_day, render_lines
    from haymaker.agent.schedule import default_seed
    from haymaker.selection import load_selection, resolve_duration, unknown_name_message
    from haymaker.settings import load_environment
    from scenarios.catalog import load_catalog

    from haymaker.runspec import check_run_id_time

    _, env = cfg_and_environment(environment)
    if run_id is not None:
        check_run_id_time(run_id)
    catalog = load_catalog()
    if scenario not in catalog:
        raise InvalidInput(unknown_name_message(scenario, catalog))
    run_id = run_id or new_run_id()
    hours = resolve_duration(load_selection(catalog), duration)
    doc = plan_day(catalog[scenario], run_id=run_id, duration_hours=hours, settings=load_environment(env),
                   seed=default_seed(run_id, scenario) if seed is None else seed)
    if as_json:
        emit_json(doc)
        return
    for line in render_lines(doc):
        typer.echo(line)


@app.command("run")
def run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands instead of running az."),
    time_scale: float = typer.Option(1.0, help="Compress the schedule K-fold (3600: an hour a second)."),
    seed: Optional[int] = typer.Option(None, help="Seed of operate times and retry jitter."),
    scenario: Optional[str] = typer.Option(None, help="With --dry-run: the scenario (else HAYMAKER_SCENARIO)."),
    run_id: Optional[str] = typer.Option(None, help="With --dry-run: the run id (else HAYMAKER_RUN_ID or new)."),
    duration: Optional[int] = typer.Option(None, help="With --dry-run: hours until the run expires "
                                                      f"(else HAYMAKER_EXPIRES_AT or {DEFAULT_DURATION_HOURS})."),
) -> None:
    """Live the scenario's day: inputs from the job's environment (HAYMAKER_*, AZURE_*)."""
    from haymaker.agent.runner import StopSignal, run_agent

    if not time_scale >= 1:
        raise InvalidInput(f"--time-scale {time_scale} must be 1 or more")
    env, defaults = dict(os.environ), None
    if dry_run:
        env, defaults = _dry_run_inputs(env, scenario, run_id, duration)
    elif scenario or run_id or duration:
        raise InvalidInput("--scenario, --run-id and --duration are for --dry-run: a real agent reads "
                           "HAYMAKER_SCENARIO, HAYMAKER_RUN_ID and HAYMAKER_EXPIRES_AT from its job")
    stop = StopSignal()
    with stop.installed():
        code = run_agent(env, defaults=defaults, dry_run=dry_run, time_scale=time_scale, seed=seed, stop=stop)
    raise typer.Exit(code)


def _dry_run_inputs(env: dict, scenario: str | None, run_id: str | None, duration: int | None):
    """Flags first, then the environment, then placeholders."""
    from haymaker.agent.config import dry_run_defaults

    if scenario or run_id:
        env.pop("HAYMAKER_RESOURCE_GROUP", None)  # derive it again from the flags
    if scenario:
        env["HAYMAKER_SCENARIO"] = scenario
    env["HAYMAKER_RUN_ID"] = run_id or env.get("HAYMAKER_RUN_ID") or new_run_id()
    if duration is not None or not env.get("HAYMAKER_EXPIRES_AT"):
        hours = check_duration(DEFAULT_DURATION_HOURS if duration is None else duration)
        env["HAYMAKER_EXPIRES_AT"] = iso(datetime.now(timezone.utc) + timedelta(hours=hours))
    return env, dry_run_defaults(scenario=env.get("HAYMAKER_SCENARIO"), run_id=env["HAYMAKER_RUN_ID"],
                                 expires_at=env["HAYMAKER_EXPIRES_AT"])


def main(argv: list[str] | None = None) -> int:
    """``python -m haymaker.agent``: the agent's commands on their own, with the operator CLI's exit codes."""
    return run_app(app, argv, prog_name="haymaker agent")
