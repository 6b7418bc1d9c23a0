"""`haymaker truth`: a run's answer key, from the platform's Log Analytics workspace."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from haymaker.cli.common import err, load_cfg

CONTENT_TYPES = {"truth.jsonl": "application/x-ndjson", "truth.md": "text/markdown; charset=utf-8",
                 "summary.json": "application/json"}


def truth(
    run_id: str = typer.Argument(..., help="The run (`haymaker runs` lists them)."),
    fmt: str = typer.Option("markdown", "--format", help="jsonl (one record per step), csv, or markdown."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report to FILE, not stdout."),
) -> None:
    """The run's answer key: every step its agents ran, the Activity Log operations each was expected to
    cause, and those its identity did cause (matched, missing, unexpected). Also kept in the platform's
    `reports` container, with its summary in the ledger. Run it after the run ends: Activity Log records can
    take minutes to arrive; until then it says which steps are still inside that window."""
    import json
    from datetime import datetime, timezone

    from haymaker import truthreport
    from haymaker.errors import InvalidInput
    from haymaker.ledger import Ledger
    from haymaker.loganalytics import LogAnalytics
    from haymaker.reports import ReportStore, ReportStoreError
    from haymaker.runspec import check_run_id
    from haymaker.truth import build
    from scenarios.catalog import load_catalog

    check_run_id(run_id)
    if fmt not in truthreport.FORMATS:
        raise InvalidInput(f"--format {fmt!r} is unknown: use one of {', '.join(truthreport.FORMATS)}")
    cfg = load_cfg()
    ledger = Ledger.from_config(cfg)
    ledger.flush_spool()
    logs = LogAnalytics.from_config(cfg)
    store = ReportStore.from_config(cfg)

    key = build(run_id, ledger=ledger, logs=logs, catalog=load_catalog(), now=datetime.now(timezone.utc))
    recs = truthreport.records(key)
    doc = truthreport.summary(key, recs)
    text = truthreport.render(fmt, recs, doc)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")

    try:
        stored = store.put(run_id, {
            "truth.jsonl": (truthreport.to_jsonl(recs), CONTENT_TYPES["truth.jsonl"]),
            "truth.md": (truthreport.to_markdown(recs, doc), CONTENT_TYPES["truth.md"]),
            "summary.json": (json.dumps(doc, indent=2) + "\n", CONTENT_TYPES["summary.json"]),
        })
    except ReportStoreError as e:
        where = f"written to {output}" if output else "printed"
        raise ReportStoreError(f"{e}; the report was {where} but neither stored nor summarised in the ledger: run "
                               f"`haymaker truth {run_id}` again once the container is reachable") from None
    ledger.update_run(run_id, truth_coverage=doc["coverage"], truth_events=doc["events"])
    ledger.add_event(run_id, "truth", {k: v for k, v in doc.items() if k not in ("scenarios", "platform_activity")})

    coverage = "—" if doc["coverage"] is None else f"{doc['coverage']:.0%}"
    say = [f"run {run_id}: coverage {coverage} ({doc['matched']} of {doc['expected']} expected operations), "
           f"{doc['events']} Activity Log records by its agents, {doc['platform_activity']['events']} platform"]
    if not doc["complete"]:
        say.append(f"not final: {doc['steps_in_delivery_window']} step(s) ended less than "
                   f"{doc['delivery_window_minutes']} minutes ago; run it again after {doc['final_after']}")
    say += [f"note: {note}" for note in doc["notes"]]
    say.append(f"stored in {store.where}: {', '.join(s.name for s in stored)}")
    if output is not None:
        say.append(f"wrote {output}")
    for line in say:
        err.print(line, markup=False, highlight=False)
