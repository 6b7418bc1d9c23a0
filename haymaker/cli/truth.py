"""`haymaker truth`: a run's answer key, from the platform's Log Analytics workspace; with `--due`, those of
every run that ended and has none yet."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from haymaker.cli.common import emit_json, err, load_cfg, out, write_file
from haymaker.errors import InvalidInput


def truth(
    run_id: Optional[str] = typer.Argument(None, help="The run (`haymaker runs` lists them); or give --due."),
    due: bool = typer.Option(False, "--due", help="Every run that ended at least 15 minutes ago and has no answer "
                             "key yet: build and keep each (at most --limit, oldest first)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl (one record per step), csv, or markdown "
                                      "(the default)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report to FILE, not stdout."),
    now: Optional[str] = typer.Option(None, help="With --due: pretend it is this ISO-8601 time."),
    limit: Optional[int] = typer.Option(None, help="With --due: answer keys built at most (default "
                                        "HAYMAKER_TRUTH_DUE_LIMIT, 10); the rest wait for the next call."),
    days: Optional[int] = typer.Option(None, help="With --due: look at the runs started in the last N days "
                                       "(default 30, the workspace's shortest retention)."),
    as_json: bool = typer.Option(False, "--json", help="With --due: one JSON document of what became of each run."),
) -> None:
    """The run's answer key: every step its agents ran, the Activity Log operations each was expected to
    cause, and those its identity did cause (matched, missing, unexpected). Also kept in the platform's
    `reports` container, with its summary in the ledger. Run it after the run ends: Activity Log records can
    take minutes to arrive; until then it says which steps are still inside that window. `--due` does it for
    every ended run that has no answer key yet (the reaper's workflow calls it); exit 1 if any failed."""
    from haymaker.runspec import check_run_id, parse_iso

    if run_id and due:
        raise InvalidInput(f"give a RUN_ID or --due, not both: `haymaker truth {run_id}` builds that run's answer key, "
                           "`haymaker truth --due` every ended run's that has none")
    if not run_id and not due:
        raise InvalidInput("give a RUN_ID (`haymaker runs` lists them), or --due for every ended run without an "
                           "answer key")
    if due and (fmt is not None or output is not None):
        raise InvalidInput("--format and --output are for one run: --due keeps each report in the reports container; "
                           "print one with `haymaker truth RUN_ID --format F`")
    if not due and (limit is not None or days is not None or now is not None or as_json):
        raise InvalidInput("--limit, --days, --now and --json go with --due; for one run's records use --format jsonl")
    if due:
        _due(parse_iso(now) if now else None, limit, days, as_json)
        return
    check_run_id(run_id)
    _one(run_id, fmt or "markdown", output)


def _clients():
    from haymaker.ledger import Ledger
    from haymaker.loganalytics import LogAnalytics
    from haymaker.reports import ReportStore

    cfg = load_cfg()
    ledger = Ledger.from_config(cfg)
    ledger.flush_spool()
    return cfg, ledger, LogAnalytics.from_config(cfg), ReportStore.from_config(cfg)


def _one(run_id: str, fmt: str, output: Optional[Path]) -> None:
    from datetime import datetime, timezone

    from haymaker import truthreport
    from haymaker.answerkey import keep, make
    from haymaker.reports import ReportStoreError
    from scenarios.catalog import load_catalog

    if fmt not in truthreport.FORMATS:
        raise InvalidInput(f"--format {fmt!r} is unknown: use one of {', '.join(truthreport.FORMATS)}")
    _, ledger, logs, store = _clients()
    recs, doc = make(run_id, ledger=ledger, logs=logs, catalog=load_catalog(), now=datetime.now(timezone.utc))
    text = truthreport.render(fmt, recs, doc)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_file(output, text, "--output")

    try:
        stored = keep(run_id, recs, doc, store=store, ledger=ledger)
    except ReportStoreError as e:
        where = f"written to {output}" if output else "printed"
        raise ReportStoreError(f"{e}; the report was {where} but neither stored nor summarised in the ledger: run "
                               f"`haymaker truth {run_id}` again once the container is reachable") from None

    from haymaker.truthreport import PLANE_NAMES, plane_text

    coverage = "—" if doc["coverage"] is None else f"{doc['coverage']:.0%}"
    say = [f"run {run_id}: coverage {coverage} ({doc['matched']} of {doc['expected']} expected operations), "
           f"{doc['events']} Activity Log records by its agents, {doc['platform_activity']['events']} platform"]
    say += [f"  {PLANE_NAMES[plane][0]}: {plane_text(p, PLANE_NAMES[plane][1])}" for plane, p in doc["planes"].items()
            if p["observed"] is not None]
    if not doc["complete"]:
        say.append(f"not final: {doc['steps_in_delivery_window']} step(s) ended less than "
                   f"{doc['delivery_window_minutes']} minutes ago; run it again after {doc['final_after']}")
    say += [f"note: {note}" for note in doc["notes"]]
    say.append(f"stored in {store.where}: {', '.join(s.name for s in stored)}")
    if output is not None:
        say.append(f"wrote {output}")
    for line in say:
        err.print(line, markup=False, highlight=False)


def _due(now, limit: Optional[int], days: Optional[int], as_json: bool) -> None:
    from datetime import datetime, timezone

    from haymaker.answerkey import DAYS, AnswerKeysFailed, build_due, select
    from haymaker.ledger import check_days, check_limit
    from haymaker.runspec import iso
    from haymaker.truth import DELIVERY
    from scenarios.catalog import load_catalog

    check_limit(limit)
    check_days(days)
    cfg, ledger, logs, store = _clients()
    limit = limit or cfg.get("truth_due_limit")
    if limit < 1:
        raise InvalidInput(f"truth_due_limit from {cfg.source('truth_due_limit')} is {limit}: use 1 or more")
    days = days or DAYS
    now = now or datetime.now(timezone.utc)
    due = select(ledger.list_runs(days=days, now=now), now, limit)
    console = err if as_json else out  # with --json, stdout is the document; progress still shows
    report = build_due(due, ledger=ledger, logs=logs, store=store, catalog=load_catalog(),
                       said=lambda e: console.print(_line(e), markup=False, highlight=False, soft_wrap=True))
    counts = {k: report.count(k) for k in ("built", "failed", "not_final", "waiting", "deferred")}
    tally = (f"{counts['built']} answer key(s) built, {counts['failed']} failed, {counts['not_final']} not final, "
             f"{counts['waiting']} inside the delivery window, {counts['deferred']} left for the next call"
             f" (runs started in the last {days} days, at most {limit} per call)")
    if as_json:
        emit_json({"now": iso(now), "days": days, "limit": limit,
                   "delivery_window_minutes": int(DELIVERY.total_seconds() // 60), "stored_in": store.where,
                   **counts, "runs": report.runs})
    console.print(tally if report.runs else f"no run is due an answer key (runs started in the last {days} days)",
                  markup=False, highlight=False, soft_wrap=True)
    if counts["failed"]:
        failed = [r["run_id"] for r in report.runs if r["outcome"] == "failed"]
        raise AnswerKeysFailed(f"{len(failed)} answer key(s) failed ({', '.join(failed)}): each is tried again by the "
                               "next call, after the runs that have not failed")


def _line(e: dict) -> str:
    from haymaker.truth import DELIVERY

    run = f"run {e['run_id']} ({e['status']}, ended {e['ended_at']})"
    if e["outcome"] == "built":
        coverage = "—" if e["coverage"] is None else f"{e['coverage']:.0%}"
        return (f"{run}: answer key stored, coverage {coverage} ({e['matched']} of {e['expected']} expected "
                f"operations), {e['events']} Activity Log records by its agents")
    if e["outcome"] == "failed":
        return f"{run}: failed ({e['failures']} time(s) now): {e['error']}"
    if e["outcome"] == "not_final":
        return (f"{run}: not final, {e['steps_in_delivery_window']} step(s) inside the delivery window: "
                f"left for a call after {e['final_after']}")
    if e["outcome"] == "waiting":
        return f"{run}: ended less than {DELIVERY.total_seconds() / 60:.0f} minutes ago: left for a call after {e['due_at']}"
    return f"{run}: due, past the limit: left for the next call"
