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


def _table(title: str, *columns: str, show_header: bool = True):
    from rich.table import Table

    table = Table(title=title, show_header=show_header)
    table.add_column(columns[0], no_wrap=True)  # a run id must stay on one line
    for column in columns[1:]:
        table.add_column(column)
    return table


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
    table = _table(f"{len(found)} run(s), newest first", "run id", "status", "env", "trigger", "started (UTC)",
                   "hours", "scenarios", "USD", "created/cleaned/orphaned")
    for r in found:
        table.add_row(r.run_id, r.status, r.environment, r.trigger, f"{r.started_at:%Y-%m-%d %H:%M}",
                      str(r.duration_hours), str(len(r.scenarios)), f"{r.cost_estimate_usd:.2f}",
                      f"{r.resources_created}/{r.resources_cleaned}/{r.resources_orphaned}")
    out.print(table)


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
    table = _table(f"{len(found)} agent(s)" + (f" of run {run_id}" if run_id else ""),
                   "run id", "scenario", "status", "resource group", "job")
    for a in found:
        table.add_row(a.run_id, a.scenario, a.status, a.resource_group, a.job_name)
    out.print(table)


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
    figures = _table(f"last {days} days ({m['since']} to {m['until']})", "figure", "value", show_header=False)
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
        figures.add_row(name, value)
    out.print(figures)
    last = _table("last runs", "run id", "status", "started (UTC)", "scenarios", "USD")
    for r in m["last_runs"]:
        last.add_row(r["run_id"], r["status"], r["started_at"], str(r["scenarios"]), f"{r['cost_estimate_usd']:.2f}")
    out.print(last)
