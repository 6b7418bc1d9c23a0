"""Structured logs: one JSON object a line on stdout, each naming its run and scenario.

Secrets (the client secret, the generated password) are replaced by ``[secret]`` in every string
before a line is written, as a last line of defence behind rendering that never shows them.
"""

from __future__ import annotations

import json
from typing import Callable, TextIO

from haymaker.agent.render import SECRET
from haymaker.runspec import iso

STDERR_TAIL = 600  # characters of az's error text kept in a failed step's event


class EventLog:
    def __init__(self, stream: TextIO, now: Callable, run_id: str, scenario: str, secrets: tuple[str, ...]):
        self.stream = stream
        self.now = now
        self.run_id = run_id
        self.scenario = scenario
        self.secrets = tuple(s for s in secrets if s)

    def __call__(self, event: str, **fields) -> None:
        record = {"time": iso(self.now()), "run_id": self.run_id, "scenario": self.scenario, "event": event,
                  **{k: self._redact(v) for k, v in fields.items() if v is not None}}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def _redact(self, value):
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, SECRET)
            return value
        if isinstance(value, (list, tuple)):
            return [self._redact(v) for v in value]
        if isinstance(value, dict):
            return {k: self._redact(v) for k, v in value.items()}
        return value


def tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= STDERR_TAIL else "..." + text[-STDERR_TAIL:]
