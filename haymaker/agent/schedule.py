"""When each step runs: deploy first, operate steps spread over the working day, cleanup at the end.

The day is deterministic for a seed: the same run id and scenario always give the same times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from haymaker.runspec import run_seed
from scenarios.catalog import Step

# About one operate step every 20 minutes, like a team that checks in now and then; every operate
# step runs at least once however short the day.
OPERATE_GAP = timedelta(minutes=20)
# Each slot moves by up to this share of its width either way: times look human, yet stay in order
# and inside the window.
JITTER = 0.4


@dataclass(frozen=True)
class Slot:
    at: datetime
    step: Step


def default_seed(run_id: str, scenario: str) -> int:
    return run_seed(f"{run_id}/{scenario}")


def operate_slots(steps: tuple[Step, ...], start: datetime, end: datetime, seed: int) -> list[Slot]:
    """Operate steps, looped in catalog order, at jittered times strictly inside ``[start, end)``."""
    window = (end - start).total_seconds()
    if window <= 0 or not steps:
        return []
    count = max(len(steps), int(window // OPERATE_GAP.total_seconds()))
    width = window / count
    rng = random.Random(seed)
    return [Slot(start + timedelta(seconds=width * (i + 0.5 + rng.uniform(-JITTER, JITTER))), steps[i % len(steps)])
            for i in range(count)]


def retry_delay(attempt: int, rng: random.Random, base: float = 10.0, cap: float = 300.0) -> float:
    """Exponential backoff with jitter: about base * 2^(attempt-1), capped, each between half and all of it."""
    return min(cap, base * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0)
