"""A run's answer key made, kept (reports container, then the ledger's summary), and the runs that are due one.

A run is *due* an answer key once it ended at least the Activity Log's delivery window (DELIVERY, the
allowance the answer key itself makes) ago and the ledger holds no summary of one (``truth_events``:
``truth_coverage`` stays empty when nothing was expected, so it cannot tell). It ended when the ledger
recorded a final status (a failed deploy, or a teardown's outcome: verified, forced, teardown_failed),
or, without one, when it expired. ``haymaker truth --due`` builds at most ``limit`` due runs per call,
those that failed fewer times first, then the oldest; the rest wait for the next call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from haymaker.errors import HayMakerError
from haymaker.ledger import FINISHED, RunRecord
from haymaker.runspec import iso
from haymaker.truth import DELIVERY

CONTENT_TYPES = {"truth.jsonl": "application/x-ndjson", "truth.md": "text/markdown; charset=utf-8",
                 "summary.json": "application/json"}
DAYS = 30  # the platform's shortest workspace retention: older runs' lines and records may be gone


class AnswerKeysFailed(HayMakerError):
    """`truth --due` could not build or keep some runs' answer keys (each is named in its report)."""


def make(run_id: str, *, ledger, logs, catalog, now: datetime) -> tuple[list[dict], dict]:
    """The run's answer key: one record per step, and the summary."""
    from haymaker import truthreport
    from haymaker.truth import build

    key = build(run_id, ledger=ledger, logs=logs, catalog=catalog, now=now)
    recs = truthreport.records(key)
    return recs, truthreport.summary(key, recs)


def keep(run_id: str, recs: list[dict], doc: dict, *, store, ledger) -> list:
    """The reports first, then the ledger's summary: a summary in the ledger means the reports are stored."""
    from haymaker import truthreport

    stored = store.put(run_id, {
        "truth.jsonl": (truthreport.to_jsonl(recs), CONTENT_TYPES["truth.jsonl"]),
        "truth.md": (truthreport.to_markdown(recs, doc), CONTENT_TYPES["truth.md"]),
        "summary.json": (json.dumps(doc, indent=2) + "\n", CONTENT_TYPES["summary.json"]),
    })
    ledger.update_run(run_id, truth_coverage=doc["coverage"], truth_events=doc["events"])
    ledger.add_event(run_id, "truth", {k: v for k, v in doc.items() if k not in ("scenarios", "platform_activity")})
    return stored


# --- the runs due one ---------------------------------------------------------------------------------

def ended(run: RunRecord) -> datetime:
    """When the run ended: its final status's time, else its expiry (a run the reaper has not reached yet)."""
    if run.status in FINISHED and run.ended_at is not None:
        return run.ended_at
    return run.expires_at


@dataclass
class Due:
    now: datetime
    build: list[RunRecord]  # this call's, in order
    deferred: list[RunRecord]  # due, past the limit: the next call's
    waiting: list[RunRecord]  # ended less than DELIVERY ago


def select(runs: list[RunRecord], now: datetime, limit: int) -> Due:
    """Of ``runs``, those without an answer key that ended at least DELIVERY before ``now``."""
    ready, waiting = [], []
    for run in runs:
        if run.truth_events is not None or ended(run) > now:  # has one, or is still live
            continue
        (waiting if ended(run) + DELIVERY > now else ready).append(run)
    ready.sort(key=lambda r: (r.truth_failures or 0, r.started_at, r.run_id))
    waiting.sort(key=lambda r: (ended(r), r.run_id))
    return Due(now, ready[:limit], ready[limit:], waiting)


def _entry(run: RunRecord, outcome: str, **fields) -> dict:
    return {"run_id": run.run_id, "status": run.status, "ended_at": iso(ended(run)), "outcome": outcome, **fields}


def _first(e: Exception) -> str:
    text = (str(e).strip().splitlines() or [""])[0][:500]
    return text if isinstance(e, HayMakerError) else f"{type(e).__name__}: {text}"


@dataclass
class DueReport:
    runs: list[dict] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(r["outcome"] == outcome for r in self.runs)


def build_due(due: Due, *, ledger, logs, store, catalog, said: Callable[[dict], None] = lambda entry: None) -> DueReport:
    """Build and keep the answer key of each run of ``due.build``; one run's failure is recorded on it (so
    it goes behind the others next time) and the next is tried. ``said`` hears each run's entry as it is
    known. A key that comes out not final (a step inside the delivery window: clocks disagree) is not kept."""
    report = DueReport()

    def add(entry: dict) -> None:
        report.runs.append(entry)
        said(entry)

    for run in due.waiting:
        add(_entry(run, "waiting", due_at=iso(ended(run) + DELIVERY)))
    for run in due.build:
        try:
            recs, doc = make(run.run_id, ledger=ledger, logs=logs, catalog=catalog, now=due.now)
            if not doc["complete"]:
                add(_entry(run, "not_final", final_after=doc["final_after"],
                           steps_in_delivery_window=doc["steps_in_delivery_window"]))
                continue
            stored = keep(run.run_id, recs, doc, store=store, ledger=ledger)
        except Exception as e:  # noqa: BLE001 - whatever one run does, the others are still built
            failures = (run.truth_failures or 0) + 1
            ledger.update_run(run.run_id, truth_failures=failures)
            ledger.add_event(run.run_id, "truth_failed", {"error": _first(e), "failures": failures})
            add(_entry(run, "failed", error=_first(e), failures=failures))
            continue
        add(_entry(run, "built", coverage=doc["coverage"], matched=doc["matched"], expected=doc["expected"],
                   events=doc["events"], platform_events=doc["platform_activity"]["events"], steps=doc["steps"],
                   planes={k: {f: p[f] for f in ("observed", "expected", "matched", "coverage", "events")}
                           for k, p in doc["planes"].items()},
                   notes=doc["notes"], stored=[s.name for s in stored]))
    for run in due.deferred:
        add(_entry(run, "deferred"))
    return report
