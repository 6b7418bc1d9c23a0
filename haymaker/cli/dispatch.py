"""`haymaker dispatch`: start an on-demand run through GitHub Actions (`run.yml`), validated offline first."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from haymaker.cli.common import cfg_and_environment, complete_scenario, emit_json, err, out
from haymaker.cli.plan import refuse_unless_allowed
from haymaker.errors import HayMakerError, InvalidInput


def dispatch(
    scenario: List[str] = typer.Option([], "--scenario", "-s", help="Name a scenario (1-5).",
                                       autocompletion=complete_scenario),
    duration: Optional[int] = typer.Option(None, help="Hours the agents work (1-10; default from selection.yaml)."),
    environment: Optional[str] = typer.Option(None, "--environment", "-e",
                                              help="dev, staging or prod (default: HAYMAKER_ENVIRONMENT, then "
                                                   "`haymaker config`, then dev)."),
    watch: bool = typer.Option(False, "--watch", help="Follow the run to its end; exit 1 unless it succeeds."),
    repo: Optional[str] = typer.Option(None, help="OWNER/REPO or HOST/OWNER/REPO (default: the git remote origin)."),
    ref: Optional[str] = typer.Option(None, help="Branch or tag whose run.yml runs (default: the default branch)."),
    check: bool = typer.Option(False, "--check", help="Only validate here, offline: never contacts GitHub, "
                                                      "needs no token."),
    workflow_dry_run: bool = typer.Option(False, "--workflow-dry-run",
                                          help="Start the workflow, which only plans: it deploys nothing."),
    dry_run: bool = typer.Option(False, "--dry-run", hidden=True, help="Deprecated: --workflow-dry-run."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
) -> None:
    """Start an on-demand run with GitHub's workflow_dispatch API, after the same offline checks as `plan`.

    Token: GITHUB_TOKEN or GH_TOKEN, else `gh auth token`. Prints the workflow run's URL.
    """
    if dry_run:
        err.print("warning: --dry-run is deprecated: it is --workflow-dry-run (the workflow plans, deploys "
                  "nothing); --check validates here without GitHub", markup=False, highlight=False)
        workflow_dry_run = True
    if check and (watch or workflow_dry_run):
        raise InvalidInput("--check validates here and starts nothing: leave out --watch and --workflow-dry-run")
    if not scenario:
        raise InvalidInput("name 1 to 5 scenarios with --scenario (a pick by size runs on the schedule, or with "
                           "`gh workflow run run.yml -f size=...`)")
    from haymaker.gcpause import paused_gc

    _, env = cfg_and_environment(environment)
    with paused_gc():
        from haymaker.plan import plan_run

        plan = plan_run(environment=env, scenarios=scenario, duration=duration, trigger="dispatch")
    refuse_unless_allowed(plan)  # a bad request never reaches GitHub

    from haymaker.dispatch import workflow_inputs

    inputs = workflow_inputs(env, list(plan.spec.scenarios), duration, workflow_dry_run)
    console = err if as_json else out
    console.print(checked_line(plan), markup=False, highlight=False)
    if check:
        if as_json:
            emit_json({"checked": True, "inputs": inputs, "plan": plan_summary(plan)})
        return

    from haymaker.github import GitHub, api_url, find_token, parse_repo, repository_from_git

    repository = parse_repo(repo) if repo else repository_from_git(Path.cwd())
    token = find_token(repository)
    github = GitHub(repository, token, api_url(repository),
                    echo=lambda line: err.print(line, markup=False, highlight=False))
    try:
        _dispatch(build_dispatcher(github, lambda line: console.print(line, markup=False, highlight=False)),
                  plan, inputs, ref, watch, as_json)
    finally:
        github.close()


def plan_summary(plan) -> dict:
    return {"scenarios": list(plan.spec.scenarios), "duration_hours": plan.spec.duration_hours,
            "cost_usd": round(plan.cost_usd, 2), "budget_usd": plan.budget_usd}


def _dispatch(dispatcher, plan, inputs: dict, ref: str | None, watch: bool, as_json: bool) -> None:
    from haymaker.dispatch import WORKFLOW, raise_unless_found

    ref = ref or dispatcher.default_branch()
    started = dispatcher.start(ref, inputs)
    console = err if as_json else out
    console.print(f"started {WORKFLOW} on {ref} in {dispatcher.github.repo}", markup=False, highlight=False)
    run = started.run or dispatcher.find(ref, started.at)
    if run is None and not watch:
        err.print(f"warning: GitHub accepted the dispatch, but its run did not show up in time: find it at "
                  f"{dispatcher.workflow_page}", markup=False, highlight=False)
    if not as_json:
        out.print(run.html_url if run else dispatcher.workflow_page, markup=False, highlight=False, soft_wrap=True)
    failure = None
    if watch:
        run = raise_unless_found(run, dispatcher)
        try:
            run = dispatcher.watch(run, inputs["environment"])
        except KeyboardInterrupt:
            err.print(f"stopped watching; the run goes on: {run.html_url}", markup=False, highlight=False)
            raise typer.Exit(130)
        except HayMakerError as e:  # a failed run still gets its JSON document first
            failure = e
            run = getattr(e, "run", run)
    if as_json:
        emit_json({"repository": str(dispatcher.github.repo), "workflow": WORKFLOW, "ref": ref, "inputs": inputs,
                   "run": run.to_json() if run else None, "workflow_url": dispatcher.workflow_page,
                   "plan": plan_summary(plan)})
    if failure:
        raise failure


def checked_line(plan) -> str:
    """One line (under 80 columns) for what the offline checks passed; warnings went to stderr already."""
    s, n = plan.spec, len(plan.spec.scenarios)
    budget = f"{plan.budget_usd:.0f}" if plan.budget_usd == int(plan.budget_usd) else f"{plan.budget_usd:.2f}"
    return (f"plan checked: {n} scenario{'s' if n != 1 else ''} · {s.environment} · {s.duration_hours} h · "
            f"${plan.cost_usd:.2f} of ${budget} budget · policy ok")


def build_dispatcher(github, echo):
    """The dispatcher on the real clock; tests replace this to poll without sleeping."""
    from haymaker.dispatch import Dispatcher

    return Dispatcher(github, echo=echo)
