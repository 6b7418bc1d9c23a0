"""Operator commands that touch Pulumi and Azure: up, down, reap, status, resources, cleanup.
Exit codes: 0 ok, 1 invalid input, 2 refused, 3 something was left behind."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional

import typer

from haymaker.cli.common import cfg_and_environment, complete_scenario, emit_json, err, load_cfg, out
from haymaker.cli.plan import refuse_unless_allowed
from haymaker.errors import HayMakerError, InvalidInput, Refused

LEFT_BEHIND = 3


class LeftBehind(HayMakerError):
    exit_code = LEFT_BEHIND


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput(f"{question} needs confirmation: pass --yes when running without a terminal")
    if not typer.confirm(question, default=False):
        raise InvalidInput("aborted: nothing was changed")


def graph_pools(environment: str, catalog) -> dict[str, int]:
    """Slots of each Graph scenario's identity pool, as the environment's platform provisions them."""
    from stacks.config import load_platform_settings

    size = load_platform_settings(environment).graph_identity_pool_size
    return {s.name: size for s in catalog.scenarios.values() if s.graph_permissions}


def build_lifecycle(cfg, environment: str, progress=None):
    """The real lifecycle: Automation-API driver, Azure adapters and the ledger, from configuration.
    Tests replace this function. ``progress`` (haymaker.progress.Progress) shows each scenario's state;
    without one the engine's own output is echoed."""
    from haymaker.azure import Azure
    from haymaker.cloud import Endpoints
    from haymaker.lifecycle import Lifecycle

    subscription = cfg.get("subscription_id")
    if not subscription:
        raise InvalidInput("set AZURE_SUBSCRIPTION_ID (environment, .env or `haymaker config set subscription_id`)")
    return Lifecycle(azure=Azure.connect(subscription, Endpoints.from_config(cfg)),
                     platform_stack=cfg.get("platform_stack") or environment,  # as `doctor` reads it
                     **lifecycle_parts(cfg, environment, progress))


def lifecycle_parts(cfg, environment: str, progress=None) -> dict:
    """What every lifecycle takes from configuration: the Automation-API driver (the engine's output
    echoed unless ``progress`` shows it in a terminal), the ledger, the audit directory and the echo."""
    from haymaker import policycheck
    from haymaker.driver import RunStackDriver
    from haymaker.ledger import Ledger

    ledger = Ledger.from_config(cfg)
    ledger.flush_spool()
    echo_engine = progress is None or not progress.console.is_terminal
    driver = RunStackDriver(backend=cfg.get("backend_url"), secrets_provider=cfg.get("secrets_provider"),
                            policy_config=policycheck.config_path(environment),
                            on_output=(lambda line: err.print(line.rstrip(), markup=False, highlight=False))
                            if echo_engine else (lambda line: None),
                            on_event=progress.engine_event if progress is not None else None)
    return {"driver": driver, "ledger": ledger, "audit_dir": Path(cfg.get("audit_dir")).expanduser(),
            "echo": lambda m: err.print(m, markup=False, highlight=False), "progress": progress,
            "environment": environment, "stale_lock_after": timedelta(minutes=cfg.get("stale_lock_minutes")),
            "budget": timedelta(minutes=cfg.get("teardown_budget_minutes"))}


def _progress(as_json: bool):
    """Each scenario's state on stdout: in place in a terminal, timestamped lines otherwise, none with --json."""
    from haymaker.progress import Progress

    return Progress(out, enabled=not as_json)


def up(
    size: Optional[str] = typer.Option(None, help="small, medium or large (scheduled pick)."),
    scenario: List[str] = typer.Option([], "--scenario", "-s", help="Name a scenario (1-5): an on-demand run.",
                                       autocompletion=complete_scenario),
    duration: Optional[int] = typer.Option(None, help="Hours the agents work (1-10)."),
    environment: Optional[str] = typer.Option(None, "--environment", "-e", help="dev, staging or prod."),
    trigger: str = typer.Option("local", help="schedule, release, dispatch or local."),
    run_id: Optional[str] = typer.Option(None, help="Use this run id (e.g. the one a plan showed)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Write the result as JSON."),
) -> None:
    """Create a run: validate, check every prerequisite (as doctor does), deploy with retries, destroy on failure."""
    from haymaker.cli.doctor import prerequisites
    from haymaker.doctor import refuse_unless_ready
    from haymaker.lifecycle import check_account
    from haymaker.plan import plan_run
    from haymaker.selection import load_selection

    from haymaker.runspec import check_run_id_time

    cfg, env = cfg_and_environment(environment)
    if run_id is not None:
        check_run_id_time(run_id)
    plan = plan_run(environment=env, size=size, scenarios=scenario, duration=duration, trigger=trigger,
                    run_id=run_id)
    refuse_unless_allowed(plan)
    spec = plan.spec
    if spec.expires_at <= datetime.now(timezone.utc):
        raise InvalidInput(f"run {spec.run_id} would have expired at {spec.expires_at:%Y-%m-%d %H:%M}Z, so the "
                           "reaper would remove it at once: leave --run-id out for a new one")
    # Every missing prerequisite at once, before anything is asked or changed.
    refuse_unless_ready(prerequisites(cfg, env))
    _confirm(f"Deploy {spec.stack_name} ({len(spec.scenarios)} scenarios, {spec.duration_hours} h, "
             f"~${plan.cost_usd:.2f}) to {env}?", yes)
    progress = _progress(as_json)
    life = build_lifecycle(cfg, env, progress=progress)
    check_account(cfg.get("subscription_id"), cfg.get("tenant_id"), life.azure, plan.settings.subscription_id)
    limit = load_selection(plan.catalog).max_live_on_demand_runs
    with progress:
        result = life.up(spec, plan.settings, on_demand_limit=limit, cost_usd=plan.cost_usd,
                         graph_pools=graph_pools(env, plan.catalog))
    spec = result.spec  # with the Graph identity leases
    if as_json:
        emit_json({"run": spec.to_dict(), "inventory": result.inventory, "jobs": result.jobs,
                   "deploy_seconds": round(result.deploy_seconds, 1),
                   "audit": str(result.audit_path) if result.audit_path else None})
        return
    out.print(f"{spec.stack_name}: deployed in {result.deploy_seconds:.0f} s; the inventory is in "
              f"`haymaker resources --run-id {spec.run_id}` (or --json)", markup=False, highlight=False)
    from haymaker.tables import print_table

    rows = [{"scenario": e["scenario"], "job": e["job_name"], "start": result.jobs.get(e["scenario"], "")}
            for e in result.inventory]
    print_table(out, ["scenario", "start", "job"], rows, give_way=[("job", 0)])


def down(run_id: str = typer.Argument(..., help="The run, such as 20261121t0600z-7f3a (`haymaker runs`)."),
         environment: Optional[str] = typer.Option(None, "--environment", "-e", help="dev, staging or prod."),
         yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
         as_json: bool = typer.Option(False, "--json", help="Write the result as JSON.")) -> None:
    """Tear one run down now: destroy, remove the stack, verify nothing is left."""
    from haymaker.cli.doctor import build_doctor
    from haymaker.doctor import refuse_unless_ready
    from haymaker.runspec import check_run_id

    check_run_id(run_id)
    cfg, env = cfg_and_environment(environment)
    # Every missing prerequisite at once, as `up` does, before anything is asked or read (a teardown needs
    # no agent image and no platform: neither stops it).
    refuse_unless_ready(build_doctor(cfg, env).teardown())
    progress = _progress(as_json)
    life = build_lifecycle(cfg, env, progress=progress)
    refuse_unknown_run(life, run_id)
    _confirm(f"Destroy run-{run_id} and delete everything it created?", yes)
    with progress:
        result = life.teardown(run_id)
    if result.outcome == "refused":
        raise Refused(result.error)
    _report_teardowns([result], as_json)


def refuse_unknown_run(life, run_id: str) -> None:
    """A run is known by its stack (made by `up` or by hand) or, once the stack is gone, by the ledger."""
    if f"run-{run_id}" in {s.name for s in life.driver.list_run_stacks()}:
        return
    try:
        known = life.ledger.get_run(run_id) is not None
    except Exception:  # noqa: BLE001 - an unreadable ledger proves nothing: look for what is left anyway
        return
    if not known:
        raise InvalidInput(f"no such run {run_id}: there is no stack run-{run_id} in {life.driver.backend} and "
                           "the ledger has no record of it; `haymaker runs` lists runs, `haymaker cleanup "
                           "--orphaned` what runs whose stack is gone left behind")


def reap(dry_run: bool = typer.Option(False, "--dry-run", help="List what is due; change nothing."),
         now: Optional[str] = typer.Option(None, help="Pretend it is this ISO-8601 time."),
         parallel: Optional[int] = typer.Option(None, help="Stacks destroyed at once (default 4)."),
         environment: Optional[str] = typer.Option(None, "--environment", "-e"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Destroy every expired run stack and prove nothing is left; exit 3 when something is."""
    from haymaker.runspec import parse_iso

    cfg, env = cfg_and_environment(environment)
    when = parse_iso(now) if now else datetime.now(timezone.utc)
    progress = _progress(as_json or dry_run)
    life = build_lifecycle(cfg, env, progress=progress)
    with progress:
        results = life.reap(now=when, parallel=parallel or cfg.get("reap_parallel"), dry_run=dry_run)
    if not dry_run:
        _report_quota(life)
    _report_teardowns(results, as_json)


def _report_quota(life) -> None:
    """The soft-deleted count per identity against the directory's 250-object quota, on stderr."""
    from haymaker.lifecycle import DIRECTORY_QUOTA

    try:
        counts = life.soft_deleted_quota()
    except Exception as e:  # noqa: BLE001 - a report, never a reason for the reap to fail
        err.print(f"soft-deleted directory objects: cannot count them ({e})", markup=False, highlight=False)
        return
    shown = ", ".join(f"{who} {n}/{DIRECTORY_QUOTA}" for who, n in counts.items())
    err.print(f"soft-deleted directory objects (each counts against its creator's quota until purged): {shown}",
              markup=False, highlight=False)
    for who, n in counts.items():
        if n >= DIRECTORY_QUOTA * 0.8:
            err.print(f"warning: {who} holds {n} deleted objects of its {DIRECTORY_QUOTA}: it will soon fail to "
                      "create more (deleted groups stay 30 days)", markup=False, highlight=False)


def status(run_id: Optional[str] = typer.Argument(None, help="One run (default: the live ones)."),
           as_json: bool = typer.Option(False, "--json", help="Write the result as JSON.")) -> None:
    """Phase, agents, time left and cost so far of one run (default: the live ones)."""
    from haymaker.ledger import Ledger

    cfg = load_cfg()
    ledger = Ledger.from_config(cfg)
    ledger.flush_spool()
    now = datetime.now(timezone.utc)
    runs = [ledger.get_run(run_id)] if run_id else ledger.list_runs(status="running", limit=20)
    docs = [status_of(r, ledger.list_agents(r.run_id), now) for r in runs if r is not None]
    # Every other run stack too: one the ledger calls ended (a failed teardown keeps its stack), or one it
    # has never heard of (deployed by hand with `pulumi up`, README: "Your own machine").
    for stack in other_stacks(cfg, {d["run_id"] for d in docs}, run_id):
        record = ledger.get_run(stack.name.removeprefix("run-"))
        docs.append(status_of(record, ledger.list_agents(record.run_id), now) if record else stack_status(stack, now))
    if run_id and not docs:
        raise InvalidInput(f"no such run {run_id}: it is not in the ledger and there is no stack run-{run_id}; "
                           "see `haymaker runs`")
    if as_json:
        emit_json(docs if not run_id else docs[0])
        return
    if not docs:
        out.print("no live runs")
    for d in docs:
        cost = (f"cost so far ~${d['cost_so_far_usd']:.2f} of ${d['cost_estimate_usd']:.2f}"
                if d["cost_estimate_usd"] is not None else "no ledger record (a stack made by hand)")
        out.print(f"[bold]{d['run_id']}[/bold] {d['status']}  {d['time_left']} left  {cost}")
        for a in d["agents"]:
            out.print(f"  {a['scenario']}: {a['status']}", markup=False)


def other_stacks(cfg, shown: set[str], run_id: str | None) -> list:
    """Run stacks in the state backend other than the runs ``shown`` (only ``run_id``'s when given).
    Listing needs the Pulumi CLI; without it the ledger's answer stands, and a warning says so."""
    from haymaker.driver import RunStackDriver

    driver = RunStackDriver(backend=cfg.get("backend_url"), secrets_provider=cfg.get("secrets_provider"))
    try:
        stacks = driver.list_run_stacks()
    except HayMakerError as e:
        err.print(f"warning: stacks not listed, only the ledger's runs are shown: {e}", markup=False, highlight=False)
        return []
    wanted = {f"run-{run_id}"} if run_id else None
    return [s for s in stacks if s.name.removeprefix("run-") not in shown and (wanted is None or s.name in wanted)]


def stack_status(stack, now: datetime) -> dict:
    from haymaker.lifecycle import expiry_of

    expires = expiry_of(stack)
    return {"run_id": stack.name.removeprefix("run-"), "status": "deployed" if expires > now else "expired",
            "environment": (stack.tags or {}).get("haymaker:env"), "expires_at": expires.isoformat(),
            "time_left": str(max(expires - now, timedelta(0))).split(".")[0], "cost_estimate_usd": None,
            "cost_so_far_usd": None, "agents": [], "ledger": False}


def resources(run_id: Optional[str] = typer.Option(None, help="One run (default: every live run)."),
              group_by: str = typer.Option("scenario", help="scenario or type."),
              orphaned: bool = typer.Option(False, help="Tagged resources of runs that no longer exist."),
              environment: Optional[str] = typer.Option(None, "--environment", "-e"),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """What runs hold now: from stack outputs for live runs; orphans from the tag query."""
    if group_by not in ("scenario", "type"):
        raise InvalidInput(f"--group-by {group_by!r}: use scenario or type")
    cfg, env = cfg_and_environment(environment)
    life = build_lifecycle(cfg, env)
    with err.status("reading stacks and Azure…"):
        rows = orphan_rows(life) if orphaned else inventory_rows(life, run_id)
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row[group_by], []).append(row)
    if as_json:
        emit_json({"group_by": group_by, "groups": groups, "total": len(rows)})
        return
    if not out.is_terminal:  # one row per resource, tab-separated
        from haymaker.tables import tsv

        for text in tsv([group_by, "name", "type" if group_by == "scenario" else "scenario", "run", "id"],
                        [i for _, items in sorted(groups.items()) for i in items]):
            out.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    for key, items in sorted(groups.items()):  # a group, then each name whole on its own line
        out.print(f"{key} ({len(items)})", markup=False, highlight=False, soft_wrap=True)
        for i in items:
            out.print(f"  {i['name']}", markup=False, highlight=False, soft_wrap=True)


def cleanup(run_id: Optional[str] = typer.Option(None, help="Tear down this run."),
            orphaned: bool = typer.Option(False, help="Tear down what runs that no longer exist left behind."),
            apply: bool = typer.Option(False, "--apply", help="Do it (default: only show what would go)."),
            force: bool = typer.Option(False, help="Allow tearing down a run that has not expired."),
            yes: bool = typer.Option(False, "--yes", "-y"),
            environment: Optional[str] = typer.Option(None, "--environment", "-e"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Delete what a run, or runs that no longer exist, provably left: a dry run unless --apply; live runs
    need --force. What only looks like a run's (a copied tag or name) is reported, never deleted."""
    from haymaker.lifecycle import expiry_of
    from haymaker.runspec import check_run_id

    if bool(run_id) == orphaned:
        raise InvalidInput("give exactly one of --run-id ID or --orphaned")
    if run_id:
        check_run_id(run_id)
    cfg, env = cfg_and_environment(environment)
    life = build_lifecycle(cfg, env)
    if run_id:
        live = {s.name: s for s in life.driver.list_run_stacks()}
        stack = live.get(f"run-{run_id}")
        if stack and expiry_of(stack) > datetime.now(timezone.utc) and not force:
            raise Refused(f"run {run_id} is live until {expiry_of(stack):%Y-%m-%d %H:%M}Z: "
                          "pass --force to end it early")
        runs, refused = [run_id], []
    else:
        runs, refused = life.orphaned_runs()
    if not apply:
        plans = {r: life.survey(r) for r in runs}
        doc = {"dry_run": True, "stack": f"run-{run_id}" if run_id else None,
               "would_delete": [vars(t) for targets, _ in plans.values() for t in targets],
               "suspicious": [vars(t) for _, odd in plans.values() for t in odd],
               "refused": [r.as_dict() for r in refused]}
        if as_json:
            emit_json(doc)
        else:
            out.print(f"would delete {len(doc['would_delete'])} item(s){' and stack run-' + run_id if run_id else ''}"
                      f" of {len(runs)} run(s); {len(doc['suspicious'])} suspicious item(s) would be left alone and "
                      "reported; pass --apply to do it", markup=False, highlight=False)
            for t in doc["suspicious"]:
                out.print(f"  suspicious {t['kind']} {t['name']}: {t['reason']}", markup=False, highlight=False)
        return
    _confirm(f"Tear down {len(runs)} run(s)?", yes)
    _report_teardowns(refused + [life.teardown(r) for r in runs], as_json)


def _report_teardowns(results, as_json: bool) -> None:
    if as_json:
        emit_json([r.as_dict() for r in results])
        for r in results:  # the reasons on stderr too: the job log shows them beside the JSON artifact
            if r.error and r.outcome not in ("verified", "planned"):
                err.print(f"{r.run_id}: {r.outcome}: {r.error}", markup=False, highlight=False)
    else:
        if not results:
            out.print("nothing is due")
        for r in results:
            line = f"{r.run_id}: {r.outcome}"
            if r.leftovers_found:
                line += f" ({len(r.leftovers_found)} leftover(s) found, {len(r.leftovers_remaining)} remain)"
            if r.suspicious:
                line += f" ({len(r.suspicious)} suspicious item(s) left alone)"
            out.print(line, markup=False, highlight=False)
            for reason in (r.error or "").splitlines():  # each error on its own line
                out.print(f"  {reason}", markup=False, highlight=False)
            for x in r.suspicious:
                out.print(f"  suspicious {x.kind} {x.name}: {x.reason}", markup=False, highlight=False)
    bad = [f"{r.run_id} ({r.outcome}{', suspicious' if r.suspicious else ''})" for r in results
           if r.outcome not in ("verified", "forced", "planned") or r.suspicious]
    if bad:
        raise LeftBehind(f"{len(bad)} run(s) left something behind or need a look: {', '.join(bad)}")


def status_of(run, agents, now: datetime) -> dict:
    total = (run.expires_at - run.started_at).total_seconds() or 1
    elapsed = min(max((now - run.started_at).total_seconds(), 0), total)
    left = max(run.expires_at - now, timedelta(0))
    return {"run_id": run.run_id, "status": run.status, "environment": run.environment,
            "expires_at": run.expires_at.isoformat(), "time_left": str(left).split(".")[0],
            "cost_estimate_usd": run.cost_estimate_usd,
            "cost_so_far_usd": round(run.cost_estimate_usd * elapsed / total, 2),
            "agents": [{"scenario": a.scenario, "status": a.status, "job_name": a.job_name} for a in agents],
            "ledger": True}


def inventory_rows(life, run_id: str | None) -> list[dict]:
    stacks = [s.name for s in life.driver.list_run_stacks()]
    if run_id:
        if f"run-{run_id}" not in stacks:
            raise InvalidInput(f"no live stack run-{run_id}: see `haymaker runs` or `haymaker resources --orphaned`")
        stacks = [f"run-{run_id}"]
    rows = []
    for name in stacks:
        for e in life.driver.outputs(name).get("inventory") or []:
            rows += [
                {"run": name, "scenario": e["scenario"], "type": "Microsoft.Resources/resourceGroups",
                 "name": e["resource_group_name"], "id": e["resource_group_id"]},
                {"run": name, "scenario": e["scenario"], "type": "Microsoft.Graph/servicePrincipals",
                 "name": e["client_id"], "id": e["service_principal_object_id"]},
                {"run": name, "scenario": e["scenario"], "type": "Microsoft.App/jobs",
                 "name": e["job_name"], "id": e["job_id"]},
            ]
    return rows


def orphan_rows(life) -> list[dict]:
    from haymaker.azure import orphans_query

    alive = [s.name.removeprefix("run-") for s in life.driver.list_run_stacks()]
    return [{"run": r.get("run", ""), "scenario": r.get("run", ""), "type": r["type"], "name": r["name"], "id": r["id"]}
            for r in life.azure.query(orphans_query(alive, life.environment))]
