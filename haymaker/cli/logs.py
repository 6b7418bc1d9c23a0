"""`haymaker logs`: the agents' event lines from the platform's Log Analytics workspace."""

from __future__ import annotations

import shutil
import sys
from typing import Optional

import typer

from haymaker.cli.common import err, load_cfg

LIVE = ("deploying", "running", "destroying")  # a stack exists and its agents may be writing
# A finished run's lines end with its agents: they stop at expiry (plus their cleanup) or when the run is torn
# down; an hour more covers the lines still on their way to the workspace.
TAIL = 1  # hours


def logs(
    run_id: Optional[str] = typer.Argument(None, help="The run (default: the newest live run in the ledger)."),
    scenario: Optional[str] = typer.Option(None, "--scenario", help="Only this scenario's agent."),
    since: Optional[str] = typer.Option(None, "--since", help="Only the last DURATION (30m, 2h, 1d); default: "
                                                                "the whole run."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep polling for new lines until every agent has "
                                                                "ended (Ctrl-C stops)."),
    poll: int = typer.Option(15, "--poll", min=1, help="With --follow: seconds between polls."),
    as_json: bool = typer.Option(False, "--json", help="The raw JSON lines, one per line."),
) -> None:
    """What the agents did: a timeline (time, scenario, phase, step, outcome, seconds) or the raw JSON lines."""
    import time
    from datetime import datetime, timedelta, timezone

    from haymaker import agentlogs
    from haymaker.loganalytics import LogAnalytics

    cfg = load_cfg()
    la = LogAnalytics.from_config(cfg)  # first: without a workspace there is nothing to read, whatever the run
    target = _target(cfg, run_id, scenario)
    now = datetime.now(timezone.utc)
    start = now - agentlogs.parse_duration(since) if since else target["start"]

    def upto() -> datetime:  # a finished run is read to its end, never to now
        t = datetime.now(timezone.utc)
        return min(t, target["end"]) if target["end"] else t

    end = upto()

    def read(low: datetime, high: datetime) -> list:
        got = la.rows(lambda a, b: agentlogs.console_query(a, b, jobs=target["jobs"], run_id=target["run_id"]),
                      low, high)
        for note in got.partial:
            err.print(f"warning: Log Analytics left lines out ({note}): narrow the window with --since or "
                      "--scenario", markup=False, highlight=False)
        return agentlogs.lines_of(got.rows, target["run_id"], target["scenarios"] if scenario else ())

    width = shutil.get_terminal_size((80, 24)).columns
    shown = {"header": False}

    def emit(lines: list) -> None:
        if as_json:
            sys.stdout.write("".join(line.raw + "\n" for line in lines))
        else:
            rows = [agentlogs.timeline_row(line) for line in lines]
            sys.stdout.write("".join(x + "\n" for x in agentlogs.render(rows, width, header=not shown["header"])))
            shown["header"] = True
        sys.stdout.flush()

    if not as_json:
        err.print(f"run {target['run_id']}: lines since {start:%Y-%m-%d %H:%M} UTC (times in UTC)", markup=False,
                  highlight=False)
    if not follow:
        lines = read(start, end) if start < end else []
        if lines:
            emit(lines)
        elif not as_json:
            err.print("no lines yet: agents log once their job starts, and lines reach the workspace within a few "
                      "minutes", markup=False, highlight=False)
        return
    try:
        agentlogs.follow(read, emit, start=start, now=upto, sleep=time.sleep, poll_seconds=poll, overlap=timedelta(minutes=10),
                         scenarios=[scenario] if scenario else target["scenarios"])
    except KeyboardInterrupt:
        pass


def _target(cfg, run_id: str | None, scenario: str | None) -> dict:
    """The run to read: its id, scenarios, job names, start and (once it finished) end, from the ledger when it
    knows the run."""
    from datetime import timedelta

    from haymaker.errors import InvalidInput
    from haymaker.ledger import Ledger, LedgerUnreachable
    from haymaker.naming import job_name
    from haymaker.runspec import check_run_id

    if run_id is not None:
        check_run_id(run_id)
    ledger = Ledger.from_config(cfg)
    try:
        if run_id is None:
            live = [r for r in ledger.list_runs(limit=50) if r.status in LIVE]
            if not live:
                raise InvalidInput("no live run in the ledger: give a RUN_ID (`haymaker runs` lists them)")
            record = live[0]
        else:
            record = ledger.get_run(run_id)
    except LedgerUnreachable as e:
        if run_id is None:
            raise
        err.print(f"warning: {e}; finding the run's lines by its id", markup=False, highlight=False)
        record = None
    run_id = record.run_id if record else run_id
    scenarios = list(record.scenarios) if record else []
    if scenario is not None and scenarios and scenario not in scenarios:
        raise InvalidInput(f"run {run_id} has no scenario {scenario!r}: its scenarios are {', '.join(scenarios)}")
    picked = [scenario] if scenario else scenarios
    started = record.started_at if record else check_run_id(run_id)
    end = None
    if record and record.status not in LIVE:
        end = max(record.expires_at, record.ended_at or record.expires_at) + timedelta(hours=TAIL)
    return {"run_id": run_id, "scenarios": picked if scenario or scenarios else [],
            "jobs": [job_name(run_id, s) for s in picked], "start": started - timedelta(minutes=5), "end": end}
