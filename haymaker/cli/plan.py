"""`haymaker plan`, and the refusal gate it shares with `haymaker up` and `haymaker policy check`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from haymaker.cli.common import cfg_and_environment, complete_scenario, emit_json, err, out, write_file
from haymaker.errors import InvalidInput, Refused


def plan(
    size: Optional[str] = typer.Option(None, help="Simulation size of a scheduled pick: small, medium or large "
                                                  "(default: the environment's haymaker:simulationSize)."),
    scenario: List[str] = typer.Option([], "--scenario", "-s", help="Name a scenario (1-5) for an on-demand run.",
                                       autocompletion=complete_scenario),
    duration: Optional[int] = typer.Option(None, help="Hours the agents work (1-10; default from selection.yaml)."),
    run_id: Optional[str] = typer.Option(None, help="Run id such as 20261121t0600z-7f3a (default: new)."),
    environment: Optional[str] = typer.Option(None, "--environment", "-e",
                                              help="dev, staging or prod, whose Pulumi.<env>.yaml to use (default: "
                                                   "HAYMAKER_ENVIRONMENT, then `haymaker config`, then dev)."),
    trigger: str = typer.Option("local", help="schedule, release, dispatch or local."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
    markdown: Optional[Path] = typer.Option(None, help="Also write a pull-request comment to this file."),
    write_stack_config: bool = typer.Option(False, help="Also write Pulumi.run-<run_id>.yaml for `pulumi up`."),
    selection: Optional[Path] = typer.Option(None, help="Selection file (default: scenarios/selection.yaml)."),
    resources: bool = typer.Option(False, "--resources", "-v", help="One row per resource instead of per scenario."),
) -> None:
    """Show what a run would create, its cost and deploy time, offline (no credentials needed)."""
    from haymaker.gcpause import paused_gc

    _, env = cfg_and_environment(environment)  # the same environment `up` would deploy to
    if run_id is not None:
        from haymaker.runspec import check_run_id_time

        check_run_id_time(run_id)
    if write_stack_config:
        refuse_placeholders(env)
    with paused_gc():  # the imports and the plan: see paused_gc
        from haymaker.plan import plan_run
        from haymaker.render import markdown as to_markdown, print_resources, print_summary
        from haymaker.selection import SELECTION_FILE

        result = plan_run(environment=env, size=size, scenarios=scenario, duration=duration,
                          run_id=run_id, trigger=trigger, selection_path=selection or SELECTION_FILE)
    if markdown:
        write_file(markdown, to_markdown(result), "--markdown")
    if as_json:
        emit_json(result.to_json())
    elif resources:
        print_resources(result, out, plain=not out.is_terminal)
    else:
        print_summary(result, out, plain=not out.is_terminal)
    if not write_stack_config:
        warn_placeholders(env)
    refuse_unless_allowed(result)
    if write_stack_config:
        from haymaker.stackconfig import write_run_stack_config

        path = write_run_stack_config(result.spec, result.settings)
        for line in hand_run_steps(path.name, result):
            err.print(line, markup=False, highlight=False)


def hand_run_steps(file: str, plan) -> list[str]:
    """What to type next to deploy the run with the Pulumi CLI: the backend, stack tags, policy pack and
    policy config that `haymaker up` uses, so that `status`, `down` and `reap` see the stack."""
    import shlex

    from haymaker.config import load_config
    from haymaker.driver import backend_url
    from haymaker.graphlease import LEASE_TAG, format_leases
    from haymaker.policycheck import config_path

    spec = plan.spec
    backend = backend_url(load_config().get("backend_url"))
    tags = spec.stack_tags()
    graph = {s: 0 for s in spec.scenarios if plan.catalog[s].graph_permissions}
    if graph:  # the program borrows slot 0 of each Graph scenario's pool; the teardown reads it from the tag
        tags[LEASE_TAG] = format_leases(graph)
    policy = config_path(spec.environment)
    pack = "--policy-pack policies" + (f" --policy-config policies/{policy.name}" if policy.exists() else "")
    stack = spec.stack_name
    lines = [f"wrote {file}; deploy it with the Pulumi CLI, as `haymaker up` would:",
             f"  export PULUMI_BACKEND_URL={backend}"]
    if backend.startswith("file://"):
        lines.append("  export PULUMI_CONFIG_PASSPHRASE=...   # pulumi asks for it otherwise; keep it for `down`")
    lines += [f"  pulumi stack init {stack}",
              *(f"  pulumi stack tag set {k} {shlex.quote(v)} --stack {stack}" for k, v in sorted(tags.items())),
              f"  pulumi up --stack {stack} {pack}",
              f"then `haymaker status`, `haymaker down {spec.run_id}` and `haymaker reap` see it"]
    return lines


def refuse_placeholders(environment: str) -> None:
    """Deploying needs the keys the repository ships as placeholders set (exit 1, naming each)."""
    from haymaker.settings import placeholders

    found = placeholders(environment, keys=("agentImage",))
    if found:
        raise InvalidInput("; ".join(p.line() for p in found))


def warn_placeholders(environment: str) -> None:
    """An offline plan works with the placeholders (a pull request's plan); it says they would not deploy."""
    from haymaker.settings import placeholders

    for p in placeholders(environment, keys=("agentImage",)):
        err.print(f"warning: {p.file}: {p.key} has {p.why}; `up` and --write-stack-config refuse it until "
                  'it is set (README: "Keys you must edit")', markup=False, highlight=False)


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
