"""`haymaker try SCENARIO`: one scenario in your own sandbox subscription, as you, without the platform."""

from __future__ import annotations

from typing import Optional

import typer

from haymaker.cli.common import cfg_and_environment, complete_scenario, emit_json, err, out
from haymaker.errors import HayMakerError, InvalidInput, Refused

INTERRUPTED = 130  # what a shell reports for Ctrl-C


class TryFailed(HayMakerError):
    """The scenario's day did not complete; the teardown left nothing (else LeftBehind)."""


class TryInterrupted(HayMakerError):
    exit_code = INTERRUPTED


def try_scenario(
    scenario: str = typer.Argument(..., help="The scenario to try (`haymaker scenarios list`).",
                                   autocompletion=complete_scenario),
    subscription: Optional[str] = typer.Option(None, help="Your sandbox subscription's id (default: "
                                               "AZURE_SUBSCRIPTION_ID, else your az CLI's subscription); it must be "
                                               "your az CLI's current subscription."),
    location: Optional[str] = typer.Option(None, help="Region of the scenario's resource group (default: the "
                                           "environment's haymaker:location)."),
    minutes: int = typer.Option(15, help="Minutes the scenario's working day is compressed into (5-60); deploy "
                                "and cleanup steps take as long as they take."),
    environment: Optional[str] = typer.Option(None, "--environment", "-e", help="Whose settings and policy pack "
                                              "apply: dev, staging or prod."),
    run_id: Optional[str] = typer.Option(None, help="Use this run id (the current minute; default: new)."),
    wait_for_logs: bool = typer.Option(False, "--wait-for-logs", help="Wait out the Activity Log's delivery window "
                                       "(up to 15 min) so the answer key is final."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Write the outcome as one JSON document."),
) -> None:
    """Run one scenario in your own subscription with your own `az login`: no platform, no service principal,
    no Graph consent. A short-lived run stack creates the scenario's resource group; the agent lives the
    scenario's working day on this machine, compressed into --minutes, as you (the Activity Log names you);
    then everything is destroyed and verified gone, and the answer key is built when a Log Analytics workspace
    is configured. Ctrl-C or a failure still tears everything down. Exit 0 when the day completed and nothing
    is left, 1 when it did not complete, 2 when refused, 3 when something was left behind, 130 on Ctrl-C."""
    import uuid
    from dataclasses import replace
    from datetime import datetime, timezone

    from haymaker import trycheck
    from haymaker.policycheck import load_policy_config
    from haymaker.runspec import new_run_id
    from haymaker.selection import unknown_name_message
    from haymaker.settings import load_environment
    from haymaker.tryrun import refuse_unless_allowed
    from scenarios.catalog import load_catalog

    # The input, offline: a mistake here creates nothing and needs nothing installed.
    cfg, env = cfg_and_environment(environment)
    catalog = load_catalog()
    if scenario not in catalog:
        raise InvalidInput(unknown_name_message(scenario, catalog))
    chosen = catalog[scenario]
    why = trycheck.refusal(chosen)
    if why:
        raise Refused(why)
    trycheck.check_minutes(minutes)
    settings = load_environment(env)
    location = location or settings.location
    trycheck.check_location(location, settings, chosen, load_policy_config(env))
    if subscription:
        try:
            subscription = str(uuid.UUID(subscription))
        except ValueError:
            raise InvalidInput(f"--subscription {subscription!r} is not a subscription id (a GUID): "
                               "`az account list --output table` lists yours") from None
    now = datetime.now(timezone.utc)
    run_id = trycheck.check_run_id_now(run_id, now) if run_id else new_run_id(now)

    # Every missing prerequisite at once, before anything is asked or changed.
    account, endpoints, credential = _ready(cfg, env, chosen, subscription)
    settings = replace(settings, location=location, subscription_id=account.subscription_id)
    trial = _trial(run_id, settings, chosen, account, minutes, catalog)
    refuse_unless_allowed(trial.spec, settings, catalog)  # the policy pack, offline
    _confirm_try(trial, yes)
    result = _run(trial, cfg, env, endpoints, credential, wait_for_logs, as_json)
    _report(trial, result, as_json)


def _ready(cfg, env: str, scenario, subscription: Optional[str]):
    from azure.identity import AzureCliCredential

    from haymaker.cloud import Endpoints
    from haymaker.doctor import refuse_unless_ready
    from haymaker.trycheck import AZ_TIMEOUT, Prerequisites

    endpoints = Endpoints.from_config(cfg)
    credential = AzureCliCredential(process_timeout=AZ_TIMEOUT)
    checks = Prerequisites(cfg, env, scenario, subscription=subscription, endpoints=endpoints, credential=credential,
                           azure=lambda sub: _azure(credential, sub, endpoints))
    refuse_unless_ready(checks.run())
    return checks.account, endpoints, credential


def _azure(credential, subscription: str, endpoints):
    from haymaker.tryrun import TryAzure

    return TryAzure(credential=credential, subscription_id=subscription, endpoints=endpoints)


def _trial(run_id, settings, scenario, account, minutes, catalog):
    """The try: a day as long as a run's (selection.yaml), from the company's next working morning."""
    from datetime import datetime, timezone

    from haymaker.plan import _git_sha
    from haymaker.selection import load_selection, resolve_duration
    from haymaker.tryrun import Trial, day_start, try_spec
    from scenarios.calendar import calendar_for

    selection = load_selection(catalog)
    spec = try_spec(run_id, settings.environment, scenario.name, minutes, actor=account.name or account.object_id,
                    git_sha=_git_sha())
    day_from = day_start(calendar_for(scenario.company, settings.location), datetime.now(timezone.utc))
    return Trial(spec, settings, scenario, account, minutes, resolve_duration(selection, None),
                 selection.max_live_on_demand_runs, day_from)


def _confirm_try(t, yes: bool) -> None:
    from haymaker.cli.lifecycle import _confirm

    a = t.account
    _confirm(f"Create resource group {t.resource_group} in subscription {a.subscription_id} ({a.subscription_name}), "
             f"live {t.scenario.name}'s {t.day_hours} h day in about {t.minutes} min as {a.name or a.object_id}, "
             f"then delete everything (resources at most ~${t.cost_usd:.2f})?", yes)


def _run(t, cfg, env: str, endpoints, credential, wait_for_logs: bool, as_json: bool):
    from pathlib import Path

    from haymaker.agent.runner import StopSignal
    from haymaker.cli.lifecycle import _progress, lifecycle_parts
    from haymaker.tryrun import TryLifecycle, run_try

    say = err if as_json else out
    a, spec = t.account, t.spec
    for line in (f"{spec.stack_name}: {t.scenario.name} in {a.subscription_id}, group {t.resource_group}",
                 f"you are the agent: {a.kind} {a.name or a.object_id} (object id {a.object_id}); no service principal "
                 "is created, so the Activity Log and the answer key name you",
                 f"a {t.day_hours} h day of the scenario's company from {_local(t)} in about {t.minutes} min "
                 f"(pauses {t.time_scale:.0f}x shorter; steps take their real time)",
                 f"if this process is killed, `haymaker down {spec.run_id}` removes everything"):
        say.print(line, markup=False, highlight=False, soft_wrap=True)
    progress = _progress(as_json)
    life = TryLifecycle(azure=_azure(credential, a.subscription_id, endpoints), **lifecycle_parts(cfg, env, progress))
    logs = _logs(cfg, credential, endpoints)
    stop = StopSignal()
    with stop.installed(), progress:
        return run_try(t, life, stop=stop, audit_dir=Path(cfg.get("audit_dir")).expanduser(), logs=logs,
                       wait_for_logs=wait_for_logs)


def _local(t) -> str:
    from scenarios.calendar import calendar_for

    calendar = calendar_for(t.scenario.company, t.settings.location)
    return f"{calendar.local(t.day_from):%a %H:%M} {calendar.timezone}"


def _logs(cfg, credential, endpoints):
    """The workspace the answer key reads, as you; None when none is configured."""
    from haymaker.loganalytics import LogAnalytics

    workspace = cfg.get("log_analytics_workspace")
    return LogAnalytics(workspace, credential, endpoints.log_analytics) if workspace else None


def _report(t, result, as_json: bool) -> None:
    from haymaker.cli.lifecycle import LeftBehind

    if as_json:
        from haymaker.tryrun import try_document

        emit_json(try_document(t, result))
    else:
        for line in _lines(result):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    td = result.teardown
    if result.left_behind:
        raise LeftBehind(f"{result.run_id}: the teardown did not prove everything gone"
                         f"{f' ({td.error})' if td is not None and td.error else ''}: run "
                         f"`haymaker down {result.run_id}` and check `haymaker resources --orphaned`")
    gone = f"teardown {td.outcome}: nothing is left"
    if result.stopped_by == "interrupted":
        raise TryInterrupted(f"interrupted; {gone}")
    agent = result.agent
    if result.error or not agent or agent.get("exit_code"):
        why = result.error or (f"the agent's day ended {agent.get('outcome')} (exit {agent.get('exit_code')}): its "
                               f"lines are in {agent.get('lines')}" if agent else "the agent did not run")
        raise TryFailed(f"{why}; {gone}")


def _lines(result) -> list[str]:
    a, td, key = result.agent, result.teardown, result.answer_key
    lines = []
    if a:
        lines.append(f"agent: {a['outcome']} (exit {a['exit_code']}), {a['steps']} step(s), {a['failed']} failed; "
                     f"lines in {a['lines']}")
    if result.stopped_by == "time limit":
        lines.append("the day was stopped at the try's time limit, before the stack's expiry")
    if td is not None:
        lines.append(f"teardown: {td.outcome}" + (f" ({len(td.leftovers_found)} leftover(s) found, "
                                                    f"{len(td.leftovers_remaining)} remain)" if td.leftovers_found else ""))
    lines += [f"note: {n}" for n in result.notes]
    if "skipped" in key:
        lines.append(f"answer key: skipped: {key['skipped']}")
    elif key:
        coverage = "—" if key["coverage"] is None else f"{key['coverage']:.0%}"
        lines.append(f"answer key: coverage {coverage} ({key['matched']} of {key['expected']} expected operations), "
                     f"{key['events']} Activity Log records of yours; {key['report']}")
        if not key["complete"]:
            lines.append(f"  not final: {key['steps_in_delivery_window']} step(s) ended less than 15 minutes ago; "
                         "records may still arrive (--wait-for-logs waits for them)")
        lines += [f"  note: {n}" for n in key["notes"]]
    lines.append(f"record: {result.record}")
    return lines
