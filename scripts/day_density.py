"""Prints how busy agents' days are: operate steps per hour by period of the company's day.

Over many run ids (random starts across two weeks, 1-10 h runs, every scenario), counts the steps
the schedule places in working hours, lunch, evenings, nights and days off, and the hours of each.
`python scripts/day_density.py [runs]` (default 2000).
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

from haymaker.agent.schedule import operate_slots
from scenarios.calendar import calendar_for
from scenarios.catalog import load_catalog

MONDAY = datetime(2026, 11, 23, tzinfo=timezone.utc)


def main(runs: int = 2000) -> None:
    catalog, rng = load_catalog(), random.Random(1)
    steps, hours, mistakes = Counter(), Counter(), 0
    for _ in range(runs):
        scenario = catalog[rng.choice(catalog.names())]
        cal = calendar_for(scenario.company, "swedencentral")
        start = MONDAY + timedelta(minutes=rng.randrange(0, 14 * 24 * 60, 15))
        end = start + timedelta(hours=rng.randint(1, 10), minutes=-max(30, scenario.cleanup_minutes))
        for slot in operate_slots(scenario.phases["operate"], cal, start, end, rng.getrandbits(64)):
            steps[cal.period(slot.at)] += 1
            mistakes += slot.step.expect_failure
        t = start
        while t < end:
            hours[cal.period(t)] += 1 / 12
            t += timedelta(minutes=5)
    print(f"{runs} runs, {sum(steps.values())} operate steps, {mistakes} benign mistakes")
    print(f"{'period':8} {'hours':>8} {'steps':>7} {'steps/h':>8}")
    for period in ("work", "lunch", "early", "evening", "night", "weekend"):
        print(f"{period:8} {hours[period]:8.0f} {steps[period]:7d} {steps[period] / hours[period]:8.2f}")
    inside = (steps["work"] + steps["lunch"]) / (hours["work"] + hours["lunch"])
    rest = [p for p in hours if p not in ("work", "lunch")]
    outside = sum(steps[p] for p in rest) / sum(hours[p] for p in rest)
    print(f"working hours {inside:.2f}/h, outside {outside:.2f}/h: {inside / outside:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
