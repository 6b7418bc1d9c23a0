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


class CompressedClock:
    """Wall-clock time whose waits pass ``time_scale`` times faster; commands run at their own speed.

    `haymaker try` lives a working day in minutes with it: the pauses between steps shrink, while a
    deploy, a check or a cleanup still gets the real time it needs (SystemClock would shrink their
    timeouts too, and cut every cleanup short). Schedule time runs ahead of the wall clock by
    ``ahead()`` seconds (``start``, when later than now, and the waiting skipped so far): subtract it
    to get the real time of an event."""

    def __init__(self, time_scale: float, start: datetime | None = None):
        self.time_scale = time_scale
        self._ahead = max(0.0, (start - datetime.now(timezone.utc)).total_seconds()) if start else 0.0
        self._lock = threading.Lock()

    def ahead(self) -> float:
        with self._lock:
            return self._ahead

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.ahead())

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        if seconds <= 0:
            return stop.is_set()
        started = time.monotonic()
        stopped = stop.wait(seconds / self.time_scale)
        waited = time.monotonic() - started
        with self._lock:
            self._ahead += waited * (self.time_scale - 1)
        return stopped

    def real_seconds(self, seconds: float) -> float:
        return seconds
