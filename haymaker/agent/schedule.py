"""When each operate step runs: a working day shaped by the company's calendar.

People work in sessions: a few commands with a pause to read the output between them. Sessions
come often in working hours (a burst at the start and end of the day, a lull at lunch), seldom in
the evening, at night and on days off, when whoever is on call runs a read-only check. Every
session start is jittered and every later step of a session waits a think time after the previous
one. Everything is drawn from one seed (run id + scenario), day by day in the company's zone, so
the same run always yields the same day, wherever the window of that day starts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from haymaker.runspec import run_seed
from scenarios.calendar import WorkCalendar
from scenarios.catalog import Step

# Sessions an hour, by the period of the day (company time).
RATES = {"start": 2.5, "work": 1.2, "lunch": 0.25, "end": 2.0, "early": 0.25, "evening": 0.25, "night": 0.04,
         "weekend": 0.1}
BURST = timedelta(minutes=60)  # start-of-day and end-of-day bursts
BUCKET = timedelta(minutes=5)  # resolution of the session draw
START_JITTER = timedelta(minutes=30)  # the first session of the day: up to 30 min after start
END_EARLY = (timedelta(minutes=10), timedelta(minutes=45))  # end-of-day session before the end
HOURLY_JITTER = timedelta(minutes=10)
THINK_SECONDS = (20.0, 150.0)  # between consecutive steps of a session
WEEKLY_CHANCE = 0.25  # a weekly step on another day than the week's first working day
RARE_CHANCE = 0.35  # a rare step (and a benign mistake) at all in a run
_READ_VERBS = ("show", "list", "get", "peek", "query", "check", "logs", "summarize", "diagnose")


@dataclass(frozen=True)
class Slot:
    at: datetime
    step: Step
    think_seconds: float = 0.0  # > 0: continues a session; start at least this long after the previous step


def default_seed(run_id: str, scenario: str) -> int:
    return run_seed(f"{run_id}/{scenario}")


def operate_slots(steps: tuple[Step, ...], calendar: WorkCalendar, start: datetime, end: datetime,
                  seed: int) -> list[Slot]:
    """The operate steps of the days ``[start, end)`` touches, at times strictly inside the window."""
    if end <= start or not steps:
        return []
    rng = random.Random(seed)
    pools = _Pools(steps, rng)
    sessions: list[tuple[datetime, list[Step]]] = []
    for day in calendar.days(start, end):
        sessions += _day_sessions(day, calendar, pools, rng)
    _place_occasional(sessions, calendar, pools, rng)
    slots = []
    for at, group in sorted(sessions, key=lambda s: s[0]):
        t, think = at, 0.0
        for step in group:
            if t >= end:
                break
            if start <= t:
                slots.append(Slot(t.astimezone(timezone.utc), step, think))
            think = rng.uniform(*THINK_SECONDS)
            t += timedelta(seconds=think)
    return sorted(slots, key=lambda s: s.at)


class _Pools:
    """Steps by cadence; routine steps come round in catalog order, like the checks of a person."""

    def __init__(self, steps: tuple[Step, ...], rng: random.Random):
        self.by = {c: [s for s in steps if s.cadence == c] for c in ("morning", "routine", "hourly", "end-of-day",
                                                                     "weekly", "rare")}
        self.routine = self.by["routine"] or self.by["hourly"] or self.by["morning"] or list(steps)
        self.on_call = [s for s in self.routine + self.by["hourly"] + self.by["morning"]
                        if is_read_only(s) and not s.expect_failure] or self.routine
        self._next = rng.randrange(len(self.routine))
        self._next_check = rng.randrange(len(self.on_call))

    def routine_steps(self, n: int) -> list[Step]:
        out = [self.routine[(self._next + i) % len(self.routine)] for i in range(n)]
        self._next += n
        return out

    def check(self) -> Step:
        self._next_check += 1
        return self.on_call[self._next_check % len(self.on_call)]


def is_read_only(step: Step) -> bool:
    """A step that only looks: its last command word shows, lists or gets (what on-call runs at night)."""
    words = [w for w in step.run.split()[1:5] if not w.startswith("-") and "$" not in w]
    return bool(words) and words[-1].startswith(_READ_VERBS)


def _day_sessions(day: date, cal: WorkCalendar, pools: _Pools, rng: random.Random):
    sessions: list[tuple[datetime, list[Step]]] = []
    day_start = cal.at(day, time(0, 0))
    if cal.is_workday(day):
        ws, we = cal.at(day, cal.start), cal.at(day, cal.end)
        lunch = (cal.at(day, cal.lunch_start), cal.at(day, cal.lunch_end))
        morning = pools.by["morning"] + pools.routine_steps(rng.randint(1, 2))
        if day.weekday() == cal.workdays[0]:
            morning += pools.by["weekly"]
        first = ws + _jitter(rng, START_JITTER)  # the day starts with its morning checks
        sessions.append((first, morning))
        hour = ws + timedelta(hours=1)
        while hour < we - timedelta(minutes=30):
            if pools.by["hourly"] and not lunch[0] <= hour < lunch[1]:
                sessions.append((hour + timedelta(seconds=rng.uniform(-1, 1) * HOURLY_JITTER.total_seconds()),
                                 list(pools.by["hourly"])))
            hour += timedelta(hours=1)
        evening = pools.by["end-of-day"] + pools.routine_steps(rng.randint(0, 1))
        sessions.append((we - _between(rng, *END_EARLY), evening))
    t, first = day_start, (first if cal.is_workday(day) else day_start)
    while t < day_start + timedelta(days=1):
        period = _period(t, cal)
        if rng.random() < RATES[period] * BUCKET / timedelta(hours=1):
            at = t + _jitter(rng, BUCKET)
            if period == "start" and at <= first:
                at = first + (at - t) + BUCKET
            work = period in ("start", "work", "lunch", "end")
            sessions.append((at, pools.routine_steps(rng.randint(1, 3)) if work else [pools.check()]))
        t += BUCKET
    return sessions


def _place_occasional(sessions, cal: WorkCalendar, pools: _Pools, rng: random.Random) -> None:
    """Weekly steps on other days, now and then; rare steps (benign mistakes among them) now and then."""
    working = [s for s in sessions if cal.period(s[0]) == "work"]
    extra = [s for s in pools.by["weekly"] if rng.random() < WEEKLY_CHANCE]
    extra += [s for s in pools.by["rare"] if rng.random() < RARE_CHANCE]
    for step in extra:
        if working:
            rng.choice(working)[1].append(step)


def _period(t: datetime, cal: WorkCalendar) -> str:
    period = cal.period(t)
    if period == "work":
        local = cal.local(t)
        ws, we = cal.at(local.date(), cal.start), cal.at(local.date(), cal.end)
        if t < ws + BURST:
            return "start"
        if t >= we - BURST:
            return "end"
    return period


def _jitter(rng: random.Random, width: timedelta) -> timedelta:
    return timedelta(seconds=rng.uniform(0, width.total_seconds()))


def _between(rng: random.Random, low: timedelta, high: timedelta) -> timedelta:
    return timedelta(seconds=rng.uniform(low.total_seconds(), high.total_seconds()))


def retry_delay(attempt: int, rng: random.Random, base: float = 10.0, cap: float = 300.0) -> float:
    """Exponential backoff with jitter: about base * 2^(attempt-1), capped, each between half and all of it."""
    return min(cap, base * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0)
