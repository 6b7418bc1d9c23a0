"""Time for the agent: the real clock, optionally compressed K-fold, behind one small interface.

The runner never calls ``time.sleep`` or ``datetime.now`` itself, so tests can hand it a clock that
jumps instead of sleeping. Schedule times (``now``, ``wait``) are compressed; commands still take as
long as they take, so ``real_seconds`` converts a span of schedule time into a subprocess timeout.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait ``seconds`` of schedule time; True when ``stop`` was set (then return at once)."""

    def real_seconds(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of schedule time take."""


class SystemClock:
    """Wall-clock time, running ``time_scale`` times faster from the moment it is created."""

    def __init__(self, time_scale: float = 1.0):
        self.time_scale = time_scale
        self._start = datetime.now(timezone.utc)
        self._start_mono = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._start_mono) * self.time_scale)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        if seconds <= 0:
            return stop.is_set()
        return stop.wait(self.real_seconds(seconds))

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.time_scale
