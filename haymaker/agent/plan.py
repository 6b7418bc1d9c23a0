"""The day an agent would live, computed offline: ``haymaker agent plan``.

Times are offsets from the agent's start (the run's start plus the environment's start delay).
Deploy runs first, step after step; operate steps come from the company's calendar
(haymaker/agent/schedule.py) over the same window the agent uses, and the agent skips those that
fall while it is still deploying.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from haymaker.agent.config import user_agent
from haymaker.agent.render import SECRET, placeholder_values, prepare_day
from haymaker.agent.schedule import operate_slots
from haymaker.naming import resource_group_name
from haymaker.runspec import check_run_id, iso
from haymaker.settings import EnvironmentSettings
from scenarios.calendar import DAYS, WorkCalendar, calendar_for, day_range
from scenarios.catalog import Scenario

# Values the plan cannot know offline; the job's environment supplies them at run time.
OFFLINE_IDS = {"subscription_id": "<subscription-id>", "tenant_id": "<tenant-id>", "client_id": "<client-id>",
               "agent_object_id": "<agent-object-id>"}


@dataclass(frozen=True)
class PlanEntry:
    offset_seconds: float
    at: str
    phase: str
    step: str
    command: str
    local_time: str = ""  # in the company's zone: "Mon 09:14"
    period: str = ""  # work, lunch, early, evening, night, weekend (company time)
    cadence: str | None = None  # operate steps only
    expected_failure: bool = False


def plan_day(scenario: Scenario, *, run_id: str, duration_hours: int, settings: EnvironmentSettings,
             seed: int) -> dict:
    started = check_run_id(run_id)
    agent_start = started + timedelta(minutes=settings.start_delay_minutes)
    expires_at = started + timedelta(hours=duration_hours)
    buffer = max(settings.cleanup_buffer_minutes, scenario.cleanup_minutes)
    cleanup_at = expires_at - timedelta(minutes=buffer)
    calendar = calendar_for(scenario.company, settings.location)
    day = prepare_day(scenario, placeholder_values(
        run_id=run_id, scenario=scenario.name, resource_group=resource_group_name(run_id, scenario.name),
        location=settings.location, password=SECRET, **OFFLINE_IDS))

    def entry(at, phase, step, command, cadence=None, expected_failure=False):
        return PlanEntry((at - agent_start).total_seconds(), iso(at), phase, step, command.shown,
                         f"{calendar.local(at):%a %H:%M}", calendar.period(at), cadence, expected_failure)

    entries = [entry(agent_start, "deploy", name, command) for name, command in day.deploy]
    entries += [entry(s.at, "operate", s.step.name, day.operate[s.step.name], s.step.cadence, s.step.expect_failure)
                for s in operate_slots(day.operate_steps, calendar, agent_start, cleanup_at, seed)]
    entries += [entry(cleanup_at, "cleanup", name, command) for name, command in day.cleanup]
    return {"scenario": scenario.name, "run_id": run_id, "seed": seed, "agent_start": iso(agent_start),
            "cleanup_at": iso(cleanup_at), "expires_at": iso(expires_at), "cleanup_buffer_minutes": buffer,
            "user_agent": user_agent(run_id, scenario.name),
            "calendar": calendar_doc(calendar, agent_start, expires_at),
            "entries": [asdict(e) for e in entries]}


def calendar_doc(cal: WorkCalendar, start: datetime, end: datetime) -> dict:
    """The calendar, and each day the run touches with its working hours in company time and UTC."""
    days = []
    for d in cal.days(start, end):
        day = {"date": d.isoformat(), "weekday": f"{d:%a}", "working": cal.is_workday(d)}
        if day["working"]:
            ws, we = cal.at(d, cal.start), cal.at(d, cal.end)
            day["local"] = f"{ws:%H:%M}-{we:%H:%M}"
            day["utc"] = f"{ws.astimezone(timezone.utc):%H:%M}-{we.astimezone(timezone.utc):%H:%M}"
        days.append(day)
    return {"timezone": cal.timezone, "country": cal.country, "source": cal.source,
            "workdays": [DAYS[d] for d in cal.workdays],
            "hours": {"start": f"{cal.start:%H:%M}", "end": f"{cal.end:%H:%M}",
                      "lunch": f"{cal.lunch_start:%H:%M}-{cal.lunch_end:%H:%M}"},
            "days": days}


def offset(seconds: float) -> str:
    s = int(seconds)
    return f"+{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render_lines(doc: dict, width: int | None = None) -> list[str]:
    """The plan as text; commands only when the terminal is wide enough (they are always in --json)."""
    width = width or shutil.get_terminal_size((80, 24)).columns
    cal = doc["calendar"]
    hours = cal["hours"]
    lines = [f"{doc['scenario']}: run {doc['run_id']}", f"  seed {doc['seed']}",
             f"  user agent {doc['user_agent']}",
             f"calendar: {cal['timezone']} ({cal['country'] or '-'}, from {cal['source']})",
             f"  {day_range(tuple(DAYS.index(d) for d in cal['workdays']))} {hours['start']}-{hours['end']}, "
             f"lunch {hours['lunch']}"]
    for day in cal["days"]:
        hours_text = (f"works {day['local']} local = {day['utc']} UTC" if day["working"]
                      else "day off: on call only")
        lines.append(f"  {day['weekday']} {day['date']}  {hours_text}")
    lines += [f"agent starts {doc['agent_start']}, cleanup at {doc['cleanup_at']}",
              f"  ({doc['cleanup_buffer_minutes']} min before expiry at {doc['expires_at']})",
              "deploy runs first; operate steps that fall during deploy are skipped",
              "mistake: a declared benign mistake (cadence rare), expected to fail", "",
              f"{'offset':>8}  {'UTC':5}  {'local':9}  {'period':7}  {'cadence':10}  step"]
    for e in doc["entries"]:
        cadence = "mistake" if e["expected_failure"] else e["cadence"] or e["phase"]
        line = f"{offset(e['offset_seconds']):>8}  {e['at'][11:16]}  {e['local_time']:9}  {e['period']:7}  " \
               f"{cadence:10}  {e['step']}"
        room = width - len(line) - 2
        if room >= 40:
            command = e["command"] if len(e["command"]) <= room else e["command"][:room - 1] + "…"
            line += "  " + command
        lines.append(line)
    return lines
