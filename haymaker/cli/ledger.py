"""`haymaker runs`, `haymaker agents`, `haymaker metrics`: what the ledger says about past runs.

Imports stay light at module level (typer, rich): the ledger and the Azure SDK load only when one of
these commands runs, so they cost nothing to `haymaker plan`.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import typer

from haymaker.cli.common import emit_json, err, out


def _progress(what: str):
    """A spinner on stderr while the ledger is read; none when nobody watches (pipes, CI)."""
    return err.status(f"reading {what} from the ledger…") if err.is_terminal else nullcontext()


def _open_ledger():
    """The configured ledger, with writes an outage left in the spool replayed first."""
    from haymaker.config import load_config
    from haymaker.ledger import Ledger

    config = load_config()
    for warning in config.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    ledger = Ledger.from_config(config)
    landed = ledger.flush_spool()
    if landed:
        err.print(f"ledger: {landed} write(s) kept in {ledger.spool_path} during an outage have landed", markup=False)
    return ledger


def runs(
    status: Optional[str] = typer.Option(None, help="Only runs in this status: running, verified, forced, …"),
    days: Optional[int] = typer.Option(None, help="Only runs started in the last N days."),
    limit: Optional[int] = typer.Option(None, help="At most N runs (default 20 unless --days is given)."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
) -> None:
    """Runs from the ledger, newest first."""
    from haymaker.ledger import check_days, check_limit, check_status

    check_days(days)
    check_limit(limit)
    check_status(status)
    if limit is None and days is None:
        limit = 20
    with _progress("runs"):
        found = _open_ledger().list_runs(days=days, status=status, limit=limit)
    if as_json:
        emit_json({"runs": [r.to_dict() for r in found]})
        return
    from haymaker.tables import print_table

    rows = [{"run id": r.run_id, "status": r.status, "env": r.environment, "trigger": r.trigger,
             "started (UTC)": f"{r.started_at:%Y-%m-%d %H:%M}", "hours": str(r.duration_hours),
             "scenarios": str(len(r.scenarios)), "USD": f"{r.cost_estimate_usd:.2f}",
             "created/cleaned/orphaned": f"{r.resources_created}/{r.resources_cleaned}/{r.resources_orphaned}"}
            for r in found]
    print_table(out, list(RUN_COLUMNS), rows, title=f"{len(found)} run(s), newest first", right=("hours", "scenarios", "USD"),
                give_way=[("created/cleaned/orphaned", 0), ("trigger", 0), ("hours", 0), ("scenarios", 0)])


RUN_COLUMNS = ("run id", "status", "env", "trigger", "started (UTC)", "hours", "scenarios", "USD",
               "created/cleaned/orphaned")


def agents(
    run_id: Optional[str] = typer.Option(None, help="This run's agents (default: the latest run's)."),
    all_runs: bool = typer.Option(False, "--all", help="The agents of every run of the last --days days."),
    days: int = typer.Option(30, help="With --all: how many days back."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
) -> None:
    """Agents (one per scenario per run) from the ledger."""
    from haymaker.errors import InvalidInput
    from haymaker.ledger import check_days
    from haymaker.runspec import check_run_id

    if run_id is not None and all_runs:
        raise InvalidInput("give --run-id or --all, not both")
    if run_id is not None:
        check_run_id(run_id)
    check_days(days)
    with _progress("agents"):
        ledger = _open_ledger()
        if all_runs:
            found = ledger.list_agents(days=days)
        else:
            if run_id is None:
                latest = ledger.list_runs(limit=1)
                run_id = latest[0].run_id if latest else None
            found = ledger.list_agents(run_id) if run_id else []
    if as_json:
        emit_json({"agents": [a.to_dict() for a in found]})
        return
    from haymaker.tables import print_table

    rows = [{"run id": a.run_id, "scenario": a.scenario, "status": a.status, "resource group": a.resource_group,
             "job": a.job_name} for a in found]
    # The agents of one run: its id is in the title, not on every row (piped rows keep it).
    columns = ["run id", "scenario", "status", "resource group", "job"]
    if not all_runs and out.is_terminal:
        columns.remove("run id")
    print_table(out, columns, rows, title=f"{len(found)} agent(s)" + (f" of run {run_id}" if run_id else ""),
                give_way=[("resource group", 0), ("job", 0)])


def metrics(
    days: int = typer.Option(30, help="Runs started in the last N days."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
) -> None:
    """Runs, success rate, durations, scenarios, resources and cost over the last N days."""
    from haymaker.ledger import check_days

    check_days(days)
    with _progress("metrics"):
        m = _open_ledger().metrics(days)
    if as_json:
        emit_json(m)
        return
    rate = ("—" if m["success_rate"] is None
            else f"{m['success_rate']:.0%} ({m['succeeded']} of {m['finished']} finished)")
    from haymaker.tables import print_table

    figures = []
    for name, value in [
        ("runs", f"{m['runs']}  " + ", ".join(f"{s} {n}" for s, n in m["by_status"].items())),
        ("success rate", rate),
        ("average duration", "—" if m["average_duration_hours"] is None else f"{m['average_duration_hours']} h"),
        ("average deploy", "—" if m["average_deploy_seconds"] is None else f"{m['average_deploy_seconds']} s"),
        ("scenarios executed", str(m["scenarios_executed"])),
        ("most executed", ", ".join(f"{x['scenario']} ({x['runs']})" for x in m["most_executed"]) or "—"),
        ("resources created / cleaned / orphaned",
         f"{m['resources_created']} / {m['resources_cleaned']} / {m['resources_orphaned']}"),
        ("cost estimate", f"${m['cost_estimate_usd']:.2f}"),
        ("answer key coverage", "—" if m["average_coverage"] is None else
         f"{m['average_coverage']:.0%} (average of {m['runs_with_answer_key']} run(s) with `haymaker truth`)"),
    ]:
        figures.append({"figure": name, "value": value})
    if out.is_terminal:  # a label and its value; a value too long for the line goes under it, indented
        from rich.padding import Padding
        from rich.text import Text

        out.print(f"last {days} days ({m['since']} to {m['until']})", markup=False, highlight=False)
        label = max(len(f["figure"]) for f in figures) + 2
        for f in figures:
            if label + len(f["value"]) <= out.width:
                out.print(f"{f['figure']:<{label}}{f['value']}", markup=False, highlight=False)
            else:
                out.print(f["figure"], markup=False, highlight=False)
                out.print(Padding(Text(f["value"]), (0, 0, 0, 2)))
        out.print()
    else:
        print_table(out, ["figure", "value"], figures)
    rows = [{"run id": r["run_id"], "status": r["status"], "started (UTC)": r["started_at"],
             "scenarios": str(r["scenarios"]), "USD": f"{r['cost_estimate_usd']:.2f}"} for r in m["last_runs"]]
    print_table(out, ["run id", "status", "started (UTC)", "scenarios", "USD"], rows, title="last runs",
                right=("scenarios", "USD"), give_way=[("scenarios", 0), ("started (UTC)", 0)])
