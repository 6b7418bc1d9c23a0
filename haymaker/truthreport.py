"""The answer key as records and documents: JSONL (one record per step), CSV, and markdown a person reads.

Coverage is given in total and per plane: ``arm`` (expected operations in the Activity Log) and ``graph``
(expected audit activities in the Entra audit log). A plane the workspace does not hold is *not observed*:
its steps keep their expectations, but nothing is called missing and it is left out of the total."""

from __future__ import annotations

import csv
import io
import json

from haymaker.runspec import iso
from haymaker.truth import AUDIT_TABLE, DELIVERY, MISTAKE, PLANES, AnswerKey, Operation, Step

FORMATS = ("jsonl", "csv", "markdown")
CSV_COLUMNS = ("run_id", "scenario", "phase", "step", "plane", "start", "end", "outcome", "attempts", "label",
               "expected", "matched", "missing", "unexpected", "observed", "correlation_ids", "in_delivery_window",
               "command")
SOURCES = {"arm": "AzureActivity", "graph": AUDIT_TABLE}
PLANE_NAMES = {"arm": ("ARM plane (Activity Log)", "operations"),
               "graph": ("directory plane (Entra audit log)", "audit activities")}


def _ratio(matched: int, expected: int) -> float | None:
    return round(matched / expected, 4) if expected else None


def observed(key: AnswerKey, plane: str) -> bool:
    return plane != "graph" or key.graph_observed is not False


def step_record(key: AnswerKey, step: Step) -> dict:
    matched, missing, unexpected = step.comparison()
    seen = observed(key, step.plane)
    return {"run_id": key.run_id, "scenario": step.scenario, "phase": step.phase, "step": step.step,
            "plane": step.plane, "plane_observed": seen,
            "command": step.command, "start": iso(step.start), "end": iso(step.end), "outcome": step.outcome,
            "ok": step.ok, "attempts": step.attempts, "cadence": step.cadence,
            "label": MISTAKE if step.expected_failure else None, "expected": list(step.expected),
            "matched": matched, "missing": missing if seen else [], "unexpected": unexpected,
            "observed": [_spelled(op.to_dict(), step.expected) for op in step.observed],
            "in_delivery_window": key.in_delivery_window(step)}


def _spelled(op: dict, expected: tuple[str, ...]) -> dict:
    """An expected operation as the catalog spells it (ARM logs some names in upper case)."""
    same = [name for name in expected if name.lower() == op["operation"].lower()]
    return {**op, "operation": same[0]} if same else op


def records(key: AnswerKey) -> list[dict]:
    return [step_record(key, step) for step in key.steps]


def _platform_op(op: Operation) -> dict:
    return {**op.to_dict(), "caller": op.caller}


def _planes(key: AnswerKey, recs: list[dict], events: dict[str, int]) -> dict:
    out = {}
    for plane in PLANES:
        mine = [r for r in recs if r["plane"] == plane]
        expected = sum(len(r["expected"]) for r in mine)
        matched = sum(len(r["matched"]) for r in mine)
        seen = observed(key, plane) if plane != "graph" or expected or key.graph_observed is not None else None
        out[plane] = {"source": SOURCES[plane], "observed": seen, "steps": len(mine), "expected": expected,
                      "matched": matched, "missing": expected - matched if seen else 0,
                      "unexpected": sum(len(r["unexpected"]) for r in mine),
                      "coverage": _ratio(matched, expected) if seen else None, "events": events[plane]}
    return out


def _counted(planes: dict) -> tuple[int, int]:
    """Expected and matched over the planes the workspace holds."""
    seen = [p for p in planes.values() if p["observed"] is not False]
    return sum(p["expected"] for p in seen), sum(p["matched"] for p in seen)


def summary(key: AnswerKey, recs: list[dict] | None = None) -> dict:
    recs = records(key) if recs is None else recs
    scenarios = []
    for name, identity in sorted(key.identities.items()):
        mine = [r for r in recs if r["scenario"] == name]
        planes = _planes(key, mine, {"arm": key.events.get(name, 0), "graph": key.audit_events.get(name, 0)})
        expected, matched = _counted(planes)
        scenarios.append({
            "scenario": name, "client_id": identity.client_id, "object_id": identity.object_id, "steps": len(mine),
            "expected": expected, "matched": matched, "missing": expected - matched,
            "unexpected": sum(len(r["unexpected"]) for r in mine), "coverage": _ratio(matched, expected),
            "events": key.events.get(name, 0), "audit_events": key.audit_events.get(name, 0), "planes": planes,
            "outside_steps": [op.to_dict() for op in key.outside.get(name, [])]})
    planes = _planes(key, recs, {"arm": sum(key.events.values()), "graph": sum(key.audit_events.values())})
    expected, matched = _counted(planes)
    pending = [r for r in recs if r["in_delivery_window"]]
    ends = [step.end for step in key.steps if key.in_delivery_window(step)]
    callers: dict[str, int] = {}
    for op in key.platform:
        callers[op.caller or "(none)"] = callers.get(op.caller or "(none)", 0) + op.events
    return {
        "run_id": key.run_id, "generated_at": iso(key.generated_at),
        "window": {"start": iso(key.start), "end": iso(key.end)},
        "delivery_window_minutes": int(DELIVERY.total_seconds() // 60), "complete": not pending,
        "steps": len(recs), "steps_in_delivery_window": len(pending),
        "final_after": iso(max(ends) + DELIVERY) if ends else None,
        "expected": expected, "matched": matched, "missing": expected - matched,
        "unexpected": sum(s["unexpected"] for s in scenarios), "coverage": _ratio(matched, expected),
        "events": sum(s["events"] for s in scenarios), "audit_events": sum(s["audit_events"] for s in scenarios),
        "planes": planes, "scenarios": scenarios,
        "platform_activity": {"events": key.platform_events, "callers": callers,
                              "operations": [_platform_op(op) for op in key.platform]},
        "notes": key.notes,
    }


# --- documents ---------------------------------------------------------------------------------------

def to_jsonl(recs: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)


def _observed_text(observed: list[dict]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for op in observed:
        counts[(op["operation"], op["status"])] = counts.get((op["operation"], op["status"]), 0) + 1
    return " ".join(f"{name} ({status}{f' x{n}' if n > 1 else ''})" for (name, status), n in counts.items())


def to_csv(recs: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in recs:
        writer.writerow([r["run_id"], r["scenario"], r["phase"], r["step"], r["plane"], r["start"], r["end"],
                         r["outcome"],
                         r["attempts"], r["label"] or "", " ".join(r["expected"]), " ".join(r["matched"]),
                         " ".join(r["missing"]), " ".join(r["unexpected"]), _observed_text(r["observed"]),
                         " ".join(sorted({op["correlation_id"] for op in r["observed"]})),
                         "yes" if r["in_delivery_window"] else "", r["command"]])
    return buffer.getvalue()


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") if text not in (None, "") else "—"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def plane_text(p: dict, unit: str) -> str:
    """``100% (3 of 3 operations)``, ``not observed (no AuditLogs in the workspace)`` or ``nothing expected``."""
    if p["observed"] is False:
        return f"not observed (no {p['source']} table in the workspace; {p['expected']} {unit} expected)"
    if not p["expected"]:
        return f"nothing expected ({p['events']} records)" if p["events"] else "nothing expected"
    return f"{_percent(p['coverage'])} ({p['matched']} of {p['expected']} {unit})"


def to_markdown(recs: list[dict], doc: dict) -> str:
    lines = [f"# Answer key: run {doc['run_id']}", "",
             f"Built {doc['generated_at']} from the agents' event lines and the Activity Log between "
             f"{doc['window']['start']} and {doc['window']['end']} (UTC).", "",
             "| | |", "|---|---|",
             f"| coverage | {_percent(doc['coverage'])} ({doc['matched']} of {doc['expected']} expected operations "
             "observed) |",
             *[f"| {PLANE_NAMES[plane][0]} | {plane_text(doc['planes'][plane], PLANE_NAMES[plane][1])} |"
               for plane in PLANES],
             f"| Activity Log records caused by the run's agents | {doc['events']} |",
             f"| Entra audit records caused by the run's agents | {doc['audit_events']} |",
             f"| operations no step expected | {doc['unexpected']} |",
             f"| steps | {doc['steps']} ({doc['steps_in_delivery_window']} inside the delivery window) |",
             f"| platform activity (not the agents) | {doc['platform_activity']['events']} records |", ""]
    if not doc["complete"]:
        lines += [f"> **Not final.** {doc['steps_in_delivery_window']} step(s) ended less than "
                  f"{doc['delivery_window_minutes']} minutes ago: their records may not have reached the workspace. "
                  f"Run `haymaker truth {doc['run_id']}` again after {doc['final_after']}.", ""]
    for note in doc["notes"]:
        lines += [f"> {note}", ""]
    lines += ["Each row is one step an agent ran. *Expected* are the operations the catalog says it causes (for a "
              "directory step, marked *(directory)*, the Entra audit activities); *observed* what its identity left "
              "in the Activity Log or the Entra audit log during it (status, and how many times); *missing* expected "
              "but not observed; *unexpected* observed but not expected. A declared mistake is meant to fail. Full "
              "records: the JSONL report.", ""]
    for s in doc["scenarios"]:
        graph = s["planes"]["graph"]
        directory = (f"; directory plane {plane_text(graph, 'audit activities')}, {s['audit_events']} Entra audit "
                     "records" if graph["expected"] or s["audit_events"] else "")
        lines += [f"## {s['scenario']}", "",
                  f"Coverage {_percent(s['coverage'])} ({s['matched']} of {s['expected']}), {s['events']} Activity "
                  f"Log records{directory}, identity: client id `{s['client_id'] or '—'}`, object id "
                  f"`{s['object_id'] or '—'}`.",
                  "", "| start (UTC) | phase | step | outcome | observed | missing | unexpected |",
                  "|---|---|---|---|---|---|---|"]
        for r in (r for r in recs if r["scenario"] == s["scenario"]):
            outcome = r["outcome"] + (f", {r['attempts']} attempts" if r["attempts"] > 1 else "")
            outcome += " (mistake)" if r["label"] else ""
            outcome += " (delivery window)" if r["in_delivery_window"] else ""
            step = r["step"] + (" (directory)" if r["plane"] == "graph" else "")
            lines.append(f"| {r['start'][11:19]} | {r['phase']} | {_cell(step)} | {_cell(outcome)} | "
                         f"{_cell(_observed_text(r['observed']))} | {_cell(' '.join(r['missing']))} | "
                         f"{_cell(' '.join(r['unexpected']))} |")
        if s["outside_steps"]:
            lines += ["", "Records of this identity during no step: " + ", ".join(
                f"{op['operation']} ({op['status']}, {op['time']})" for op in s["outside_steps"])]
        lines.append("")
    platform = doc["platform_activity"]
    lines += ["## Platform activity", "",
              f"{platform['events']} records in the run's resource groups by identities other than its agents "
              "(the run deployer creating and removing groups, jobs and role assignments). Not part of the coverage.",
              ""]
    if platform["operations"]:
        lines += ["| time (UTC) | operation | status | caller | resource |", "|---|---|---|---|---|"]
        lines += [f"| {op['time'][11:19]} | {_cell(op['operation'])} | {op['status']} | {_cell(op['caller'])} | "
                  f"{_cell(op['resource_id'])} |" for op in platform["operations"]]
    return "\n".join(lines).rstrip() + "\n"


def render(fmt: str, recs: list[dict], doc: dict) -> str:
    if fmt == "jsonl":
        return to_jsonl(recs)
    if fmt == "csv":
        return to_csv(recs)
    return to_markdown(recs, doc)
