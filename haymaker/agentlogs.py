"""The agents' event lines, read from the workspace's Container Apps console-log table.

Agent jobs run in the platform's Container Apps environment, whose ``log-analytics`` destination
writes each stdout line to ``ContainerAppConsoleLogs_CL``: ``TimeGenerated``, the job in
``ContainerJobName_s``, the replica in ``ContainerGroupName_s``, the line in ``Log_s`` (whole, since
the environment keeps ``dynamicJsonColumns`` off). A run's jobs are named from its id and scenarios
(``haymaker.naming.job_name``); a run the ledger does not know is found by its id in the lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable

from haymaker.errors import InvalidInput
from haymaker.loganalytics import kql_time, quote
from haymaker.runspec import iso

CONSOLE_TABLE = "ContainerAppConsoleLogs_CL"
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Line:
    logged: datetime  # TimeGenerated: when the environment's agent picked the line up
    job: str
    replica: str
    raw: str
    event: dict

    @property
    def name(self) -> str:
        return self.event.get("event", "")

    @property
    def scenario(self) -> str:
        return self.event.get("scenario", "")

    @property
    def key(self) -> tuple:
        return self.logged, self.job, self.replica, self.raw


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``."""
    text = (text or "").strip().lower()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidInput(f"--since {text!r} is not a duration: use a number and a unit, e.g. 30m, 2h, 1d or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def console_query(start: datetime, end: datetime, *, jobs: Iterable[str] = (), run_id: str = "") -> str:
    """The run's lines between start and end, oldest first: by job name when the jobs are known, else
    by the run id in the line."""
    jobs = sorted(set(jobs))
    match = (f"| where ContainerJobName_s in ({', '.join(map(quote, jobs))})" if jobs
             else f"| where Log_s contains {quote(run_id)}")
    return "\n".join([
        CONSOLE_TABLE,
        f"| where TimeGenerated between ({kql_time(start)} .. {kql_time(end)})",
        match,
        "| project TimeGenerated, ContainerJobName_s, ContainerGroupName_s, Log_s",
        "| order by TimeGenerated asc",
    ])


def lines_of(rows: Iterable[dict], run_id: str, scenarios: Iterable[str] = ()) -> list[Line]:
    """The run's event lines among ``rows``, in the order the agents wrote them. Lines that are not
    one of the agent's JSON events (az's own output, another run's) are left out."""
    wanted = set(scenarios)
    out = []
    for n, row in enumerate(rows):
        raw = (row.get("Log_s") or "").strip()
        if not raw.startswith("{"):
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("run_id") != run_id or "event" not in event:
            continue
        if wanted and event.get("scenario") not in wanted:
            continue
        out.append((event.get("time", ""), row["TimeGenerated"], n,
                    Line(row["TimeGenerated"], row.get("ContainerJobName_s") or "",
                         row.get("ContainerGroupName_s") or "", raw, event)))
    out.sort(key=lambda x: x[:3])
    return [x[3] for x in out]


# --- the timeline -----------------------------------------------------------------------------------

HEADER = ("time", "scenario", "phase", "step", "outcome", "seconds")


def _step_outcome(e: dict) -> str:
    if e.get("ok"):
        return "ok"
    if e.get("expected_failure"):
        return "mistake"  # a declared benign mistake that failed, as it should
    if e.get("timed_out"):
        return "timeout"
    if e.get("stopped"):
        return "stopped"
    return "FAILED"


def timeline_row(line: Line) -> tuple[str, str, str, str, str, str]:
    e, name = line.event, line.name
    clock = (e.get("time") or iso(line.logged))[11:19]
    phase, step, outcome, seconds = e.get("phase", ""), "", name, ""
    if name == "step":
        step = e.get("step", "") + (f" #{e['attempt']}" if e.get("attempt", 1) > 1 else "")
        outcome, seconds = _step_outcome(e), f"{e.get('seconds', 0):.1f}"
    elif name == "retry":
        step, outcome, seconds = e.get("step", ""), f"retry: {e.get('reason', '')}", f"{e.get('delay_seconds', 0):.0f}"
    elif name == "phase-start":
        outcome = "start"
    elif name == "phase-end":
        outcome = (f"ran {e.get('ran', 0)}, {e.get('failed', 0)} failed" if phase == "operate"
                   else "ok" if e.get("ok") else "FAILED")
    elif name == "agent-start":
        outcome = "agent start"
    elif name == "agent-end":
        outcome = f"{e.get('outcome', 'end')} ({e.get('exit_code')})"
    elif name == "signal":
        outcome = f"signal {e.get('signal', '')}"
    return clock, line.scenario, phase, step, outcome, seconds


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def render(rows: list[tuple[str, ...]], width: int = 80, header: bool = True) -> list[str]:
    """Fixed columns that fit ``width``: time, phase, outcome and seconds keep their size; scenario and
    step share the rest, and a name too long ends in an ellipsis instead of wrapping."""
    fixed = {"time": 8, "phase": 7, "outcome": 16, "seconds": 7}
    room = max(20, width - sum(fixed.values()) - 5)
    scenario_width = max(10, min(36, room * 11 // 20))  # the catalog: names up to 36, steps up to 32
    widths = [8, scenario_width, 7, min(35, room - scenario_width), 16, 7]  # 35: a step and " #2"
    out = []
    for row in ([HEADER] if header else []) + rows:
        cells = [_fit(cell, w) for cell, w in zip(row, widths)]
        text = " ".join(c.rjust(w) if i == 5 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        out.append(text.rstrip())
    return out


# --- following a run --------------------------------------------------------------------------------

def follow(read: Callable[[datetime, datetime], list[Line]], emit: Callable[[list[Line]], None], *,
           start: datetime, now: Callable[[], datetime], sleep: Callable[[float], None], poll_seconds: float = 15,
           overlap: timedelta = timedelta(minutes=10), scenarios: Iterable[str] = (),
           max_polls: int | None = None) -> int:
    """Poll for new lines until every scenario in ``scenarios`` has logged ``agent-end`` (or forever,
    without them; Ctrl-C ends it). Each poll reads again from ``overlap`` before the newest line seen,
    because console lines reach the workspace out of order, and shows only the lines not shown yet.
    Returns how many polls it made."""
    waiting, seen, cursor, polls = set(scenarios), set(), start, 0
    while True:
        polls += 1
        lines = read(max(start, cursor - overlap), now())
        new = [line for line in lines if line.key not in seen]
        if new:
            emit(new)
            seen.update(line.key for line in new)
            cursor = max(cursor, max(line.logged for line in new))
            seen = {k for k in seen if k[0] >= cursor - overlap}  # older ones cannot be read again
        waiting -= {line.scenario for line in new if line.name == "agent-end"}
        if (scenarios and not waiting) or (max_polls is not None and polls >= max_polls):
            return polls
        sleep(poll_seconds)
