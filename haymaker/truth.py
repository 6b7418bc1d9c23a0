"""The answer key of a run: every step its agents ran, joined with what their own identities left in the
workspace while the step ran: Activity Log records (the ARM plane) and Entra audit records (the directory
plane, ``AuditLogs``).

Inputs: the agents' event lines (``step`` events: start, end, attempt, outcome; haymaker/agentlogs.py),
the catalog's expected operations per step (scenarios/expect.py), each scenario's identity from the
ledger (the service principal's object id and client id, or the borrowed managed identity's), and the
``AzureActivity`` rows of the run's window. A row counts for a scenario when its ``Caller`` is the
identity's object id (or client id) or its token's ``appid`` claim (``Claims_d.appid``) the client
id; rows in the run's resource groups by anyone else are *platform activity* (the run deployer
creating groups, jobs and role assignments). Nothing else is attributed: two runs live at once never mix.

A ``plane: graph`` step expects the Entra audit activities its ``audit:`` lists (scenarios/audit.py). An
``AuditLogs`` row counts for a scenario when its ``InitiatedBy.app`` is the identity (``appId`` the
client id or ``servicePrincipalId`` the object id); a borrowed identity's rows whose targets are all named
for another run are that run's. Each audit record is one operation. When the workspace has no
``AuditLogs`` table (nobody sent the tenant's Entra audit logs there: docs/operations.md), the directory
plane is *not observed*: its steps are reported, but left out of the coverage.

The records of one request (``Start``, ``Accept``, ``Success``/``Failure``) share ``CorrelationId``,
operation and resource, and make one *operation*, placed at its first record: so the ``Success`` of a
long-running operation that lands minutes after the step still belongs to the step. An operation joins
the step whose window (start − SKEW … end + SKEW) holds it, preferring a step that expects it (clock
skew makes back-to-back windows overlap) and then the nearest; one stamped up to LATE after a step
that expects it joins that step. Steps that ended less than DELIVERY ago may still miss records that
have not reached the workspace: they are marked ``in_delivery_window``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable

from haymaker.errors import InvalidInput
from haymaker.loganalytics import kql_time, quote
from haymaker.runspec import iso, parse_iso
from scenarios.audit import fold

SKEW = timedelta(minutes=2)
LATE = timedelta(minutes=15)
DELIVERY = timedelta(minutes=15)
ACTIVITY_TABLE = "AzureActivity"
ACTIVITY_COLUMNS = ("TimeGenerated", "OperationNameValue", "ActivityStatusValue", "Caller", "AppId",
                    "CorrelationId", "_ResourceId", "ResourceGroup", "EventDataId", "CategoryValue")
ADMINISTRATIVE = "Administrative"  # control-plane operations; Policy records are Azure Policy evaluating them
AUDIT_TABLE = "AuditLogs"
AUDIT_COLUMNS = ("TimeGenerated", "ActivityDateTime", "ActivityDisplayName", "Category", "Result", "AppId",
                 "ServicePrincipalId", "CorrelationId", "Id", "Targets")
PLANES = ("arm", "graph")
NEAR = 256  # steps before an operation that may hold it: more than an agent runs in LATE
MISTAKE = "declared benign mistake (expected to fail)"
_FINAL = {"success": "Succeeded", "succeeded": "Succeeded", "failure": "Failed", "failed": "Failed",
          "timeout": "Failed"}


def key_of(name: str, plane: str) -> str:
    """How an expected or observed name is compared: ARM operations by case, audit activities folded."""
    return f"{plane}:{fold(name) if plane == 'graph' else name.lower()}"


@dataclass(frozen=True)
class Identity:
    scenario: str
    client_id: str = ""
    object_id: str = ""
    # Set for a borrowed Graph identity, which other runs use before and after this one: only its
    # records in this group (its Azure roles reach no other) are this run's. Likewise for the operator
    # whose own sign-in `haymaker try` runs as.
    group: str = ""
    # Other names the Activity Log's Caller may give it: a user's is their UPN, not their object id.
    callers: tuple[str, ...] = ()

    @property
    def ids(self) -> set[str]:
        return {x.lower() for x in (self.client_id, self.object_id, *self.callers) if x}


@dataclass
class Operation:
    operation: str
    resource_id: str
    correlation_id: str
    caller: str
    first: datetime
    last: datetime
    category: str = ADMINISTRATIVE
    statuses: list[str] = field(default_factory=list)
    events: int = 0
    plane: str = "arm"

    @property
    def key(self) -> str:
        return key_of(self.operation, self.plane)

    @property
    def counts(self) -> bool:
        """Whether it can be unexpected: Azure Policy's evaluations follow from policy, not from a step."""
        return self.plane == "graph" or self.category == ADMINISTRATIVE

    @property
    def status(self) -> str:
        """Failed or Succeeded when a final record arrived, Started while only Start/Accept did."""
        final = {_FINAL[s.lower()] for s in self.statuses if s.lower() in _FINAL}
        return "Failed" if "Failed" in final else "Succeeded" if final else "Started"

    def to_dict(self) -> dict:
        return {"operation": self.operation, "status": self.status, "category": self.category,
                "resource_id": self.resource_id, "correlation_id": self.correlation_id, "time": iso(self.first),
                "events": self.events, "plane": self.plane}


@dataclass
class Step:
    scenario: str
    phase: str
    step: str
    command: str
    start: datetime
    end: datetime
    ok: bool
    outcome: str
    attempts: int
    expected: tuple[str, ...] = ()
    expected_failure: bool = False
    cadence: str | None = None
    observed: list[Operation] = field(default_factory=list)
    plane: str = "arm"  # where what it expects lands: arm (Activity Log) or graph (Entra audit log); data: neither

    @property
    def expects(self) -> set[str]:
        return {key_of(name, self.plane) for name in self.expected}

    def comparison(self) -> tuple[list[str], list[str], list[str]]:
        """Expected operations (or audit activities) matched and missing, and observed ones nobody expected
        (each name once). Azure Policy's evaluations of a step's requests are observed, but never unexpected:
        they follow from the subscription's policy assignments, not from the step."""
        seen = {op.key for op in self.observed}
        matched = [name for name in self.expected if key_of(name, self.plane) in seen]
        missing = [name for name in self.expected if key_of(name, self.plane) not in seen]
        unexpected = sorted({op.operation for op in self.observed if op.key not in self.expects and op.counts},
                            key=str.lower)
        return matched, missing, unexpected


@dataclass
class AnswerKey:
    run_id: str
    start: datetime
    end: datetime
    generated_at: datetime
    steps: list[Step]
    identities: dict[str, Identity]
    outside: dict[str, list[Operation]]  # per scenario: its identity's operations that fit no step
    events: dict[str, int]  # per scenario: Activity Log records its identity caused
    platform: list[Operation]
    platform_events: int
    notes: list[str] = field(default_factory=list)
    audit_events: dict[str, int] = field(default_factory=dict)  # per scenario: Entra audit records its identity caused
    graph_observed: bool | None = None  # AuditLogs read (True), absent from the workspace (False), not needed (None)

    def in_delivery_window(self, step: Step) -> bool:
        return step.end + DELIVERY > self.generated_at


# --- the query --------------------------------------------------------------------------------------

def activity_query(start: datetime, end: datetime, identities: Iterable[Identity], groups: Iterable[str]) -> str:
    """The run's Activity Log records: those its agents' identities caused, and those in its groups."""
    ids = sorted({i for identity in identities for i in identity.ids})
    clients = sorted({identity.client_id.lower() for identity in identities if identity.client_id})
    who = [f"Caller in~ ({', '.join(map(quote, ids))})"] if ids else []
    who += [f"AppId in~ ({', '.join(map(quote, clients))})"] if clients else []
    who += [f"ResourceGroup in~ ({', '.join(map(quote, sorted(set(groups))))})"]
    return "\n".join([
        ACTIVITY_TABLE,
        f"| where TimeGenerated between ({kql_time(start)} .. {kql_time(end)})",
        "| extend AppId = tostring(Claims_d.appid)",
        f"| where {' or '.join(who)}",
        f"| project {', '.join(ACTIVITY_COLUMNS)}",
        "| order by TimeGenerated asc",
    ])


def audit_query(start: datetime, end: datetime, identities: Iterable[Identity]) -> str:
    """The Entra audit records the run's agents' identities initiated (as an application)."""
    clients = sorted({i.client_id.lower() for i in identities if i.client_id})
    objects = sorted({i.object_id.lower() for i in identities if i.object_id})
    who = [f"AppId in~ ({', '.join(map(quote, clients))})"] if clients else []
    who += [f"ServicePrincipalId in~ ({', '.join(map(quote, objects))})"] if objects else []
    return "\n".join([
        AUDIT_TABLE,
        f"| where TimeGenerated between ({kql_time(start)} .. {kql_time(end)})",
        "| extend AppId = tostring(InitiatedBy.app.appId), ServicePrincipalId = tostring(InitiatedBy.app.servicePrincipalId)",
        f"| where {' or '.join(who)}",
        "| extend Targets = tostring(TargetResources)",
        f"| project {', '.join(AUDIT_COLUMNS)}",
        "| order by TimeGenerated asc",
    ])


# --- steps from the event lines ------------------------------------------------------------------------

def _outcome(event: dict, expected_failure: bool) -> str:
    if event.get("ok"):
        return "ok (the mistake did not fail)" if expected_failure else "ok"
    if expected_failure:
        return "failed as expected"
    return "timed out" if event.get("timed_out") else "stopped" if event.get("stopped") else "failed"


def _window(e: dict) -> tuple[datetime, datetime] | None:
    try:
        end = parse_iso(e["time"])
        start = parse_iso(e["started_at"]) if e.get("started_at") else end - timedelta(seconds=float(e["seconds"]))
    except (KeyError, TypeError, ValueError, InvalidInput):
        return None
    return start, end


def steps_of(events: Iterable[dict], expected: dict[str, dict[str, dict[str, tuple]]],
             mistakes: dict[str, set[tuple[str, str]]]) -> tuple[list[Step], int]:
    """One Step per step the agents ran, its attempts folded together, and how many step events had no
    usable times. ``expected``: per scenario, ``expectations`` of the catalog ({phase: {step: (plane,
    names)}}); ``mistakes``: per scenario, its (phase, step) benign mistakes."""
    open_steps: dict[str, Step] = {}
    out: list[Step] = []
    unreadable = 0
    for e in events:
        if e.get("event") != "step":
            continue
        scenario, phase, name = e.get("scenario", ""), e.get("phase", ""), e.get("step", "")
        window = _window(e)
        if window is None:
            unreadable += 1
            continue
        start, end = window
        current = open_steps.get(scenario)
        attempt = int(e.get("attempt", 1))
        mistake = bool(e.get("expected_failure")) or (phase, name) in mistakes.get(scenario, set())
        if current and attempt > 1 and (current.phase, current.step) == (phase, name) and attempt == current.attempts + 1:
            current.attempts, current.end, current.ok = attempt, end, bool(e.get("ok"))
            current.command, current.outcome = e.get("command", current.command), _outcome(e, mistake)
            continue
        plane, names = expected.get(scenario, {}).get(phase, {}).get(name, ("arm", ()))
        step = Step(scenario, phase, name, e.get("command", ""), start, end, bool(e.get("ok")), _outcome(e, mistake),
                    attempt, tuple(names), mistake, e.get("cadence"), plane=plane)
        open_steps[scenario] = step
        out.append(step)
    return out, unreadable


# --- Activity Log records into operations -------------------------------------------------------------

def operations_of(rows: Iterable[dict]) -> list[Operation]:
    """Records of one request (same correlation id, operation and resource) as one operation."""
    ops: dict[tuple, Operation] = {}
    for row in rows:
        name = row.get("OperationNameValue") or ""
        resource = row.get("_ResourceId") or ""
        correlation = row.get("CorrelationId") or row.get("EventDataId") or ""
        at = row["TimeGenerated"]
        key = (correlation.lower(), name.lower(), resource.lower())
        op = ops.get(key)
        if op is None:
            op = ops[key] = Operation(name, resource, correlation, row.get("Caller") or "", at, at,
                                      row.get("CategoryValue") or ADMINISTRATIVE)
        op.first, op.last = min(op.first, at), max(op.last, at)
        op.statuses.append(row.get("ActivityStatusValue") or "")
        op.events += 1
    return sorted(ops.values(), key=lambda op: op.first)


def audit_operations_of(rows: Iterable[dict], run_id: str) -> tuple[list[Operation], int]:
    """Each audit record as one operation, and how many were left out as another run's: a borrowed identity
    works for other runs too, and a record whose targets are all named for another run is that run's."""
    mine, prefix, others = [], f"haymaker-{run_id}-".lower(), 0
    for row in rows:
        targets = _targets(row.get("Targets"))
        names = [str(t.get("displayName") or "").lower() for t in targets]
        ours = [n for n in names if n.startswith("haymaker-")]
        if ours and not any(n.startswith(prefix) for n in ours):
            others += 1
            continue
        at = row.get("ActivityDateTime") or row["TimeGenerated"]
        first = targets[0] if targets else {}
        target = " ".join(x for x in (first.get("type") or "", first.get("displayName") or first.get("id") or "") if x)
        op = Operation(row.get("ActivityDisplayName") or "", target, row.get("CorrelationId") or row.get("Id") or "",
                       row.get("ServicePrincipalId") or row.get("AppId") or "", at, at, row.get("Category") or "Audit",
                       [row.get("Result") or ""], 1, "graph")
        mine.append(op)
    return sorted(mine, key=lambda op: op.first), others


def _targets(value) -> list[dict]:
    import json

    try:
        found = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return []
    return [t for t in found if isinstance(t, dict)] if isinstance(found, list) else []


def _distance(t: datetime, step: Step) -> float:
    if step.start <= t <= step.end:
        return 0.0
    return min(abs((t - step.start).total_seconds()), abs((t - step.end).total_seconds()))


def place(ops: list[Operation], steps: list[Step]) -> list[Operation]:
    """Put each operation of one scenario on its step; returns those that fit none."""
    steps = sorted(steps, key=lambda s: s.start)
    starts = [s.start for s in steps]
    outside = []
    for op in ops:
        name, t = op.key, op.first
        # Steps that started before t + SKEW (a later one cannot hold t) and ended not long before it; an
        # agent runs one step at a time, so they are among the last few that started.
        last = bisect_right(starts, t + SKEW)
        near = [s for s in steps[max(0, last - NEAR):last] if t <= s.end + LATE]
        candidates = [s for s in near if s.start - SKEW <= t <= s.end + SKEW]
        if not candidates:
            candidates = [s for s in near if name in s.expects]
        if not candidates:
            outside.append(op)
            continue
        best = min(candidates, key=lambda s: (name not in s.expects, _distance(t, s), -s.start.timestamp()))
        best.observed.append(op)
    return outside


# --- the join -----------------------------------------------------------------------------------------

def answer_key(run_id: str, *, start: datetime, end: datetime, now: datetime, events: Iterable[dict],
               rows: Iterable[dict], identities: dict[str, Identity], groups: Iterable[str],
               expected: dict, mistakes: dict, audit_rows: Iterable[dict] | None = None) -> AnswerKey:
    """``audit_rows``: the AuditLogs rows of the run's identities; None when the workspace has no such table."""
    steps, unreadable = steps_of(events, expected, mistakes)
    by_id = {i: identity.scenario for identity in identities.values() for i in identity.ids}
    clients = {identity.client_id.lower(): identity.scenario for identity in identities.values() if identity.client_id}
    groups = {g.lower() for g in groups}
    mine: dict[str, list[dict]] = {s: [] for s in identities}
    platform_rows = []
    for row in rows:
        scenario = by_id.get((row.get("Caller") or "").lower()) or clients.get((row.get("AppId") or "").lower())
        if scenario is not None:
            confined = identities[scenario].group.lower()
            if not confined or (row.get("ResourceGroup") or "").lower() == confined:
                mine[scenario].append(row)  # else: the same borrowed identity, working for another run
        elif (row.get("ResourceGroup") or "").lower() in groups:
            platform_rows.append(row)
    audit: dict[str, list[dict]] = {s: [] for s in identities}
    for row in audit_rows or ():
        scenario = by_id.get((row.get("ServicePrincipalId") or "").lower()) or clients.get((row.get("AppId") or "").lower())
        if scenario is not None:
            audit[scenario].append(row)
    outside, audit_events, others = {}, {}, 0
    for scenario, scenario_rows in mine.items():
        own = [s for s in steps if s.scenario == scenario]
        graph_ops, theirs = audit_operations_of(audit[scenario], run_id)
        others += theirs
        audit_events[scenario] = len(graph_ops)
        outside[scenario] = place(sorted(operations_of(scenario_rows) + graph_ops, key=lambda op: op.first), own)
    notes = [f"{s}: no identity in the ledger, so none of its Activity Log records can be attributed"
             for s, identity in identities.items() if not identity.ids]
    if unreadable:
        notes.append(f"{unreadable} step line(s) without a readable time were left out")
    if others:
        notes.append(f"{others} Entra audit record(s) of a borrowed identity name another run's objects: left to that run")
    graph_expected = sum(len(s.expected) for s in steps if s.plane == "graph")
    if audit_rows is None and graph_expected:
        notes.append(f"the workspace has no {AUDIT_TABLE} table: the tenant's Entra audit logs are not sent to it (a "
                     "one-time step, docs/operations.md), so the directory plane is not observed and its "
                     f"{graph_expected} expected audit activities are left out of the coverage")
    return AnswerKey(run_id, start, end, now, steps, identities, outside, {s: len(r) for s, r in mine.items()},
                     operations_of(platform_rows), len(platform_rows), notes, audit_events,
                     None if not graph_expected and audit_rows is None else audit_rows is not None)


def run_expectations(scenarios) -> tuple[dict, dict]:
    """Per scenario: what each step expects (``expectations``), and its (phase, step) benign mistakes."""
    return ({s.name: expectations(s) for s in scenarios},
            {s.name: {(phase, step.name) for phase, steps in s.phases.items() for step in steps if step.expect_failure}
             for s in scenarios})


# --- reading a run ------------------------------------------------------------------------------------

EARLY = timedelta(minutes=10)  # read from a little before the run's start: its deploy, and skewed clocks


def build(run_id: str, *, ledger, logs, catalog, now: datetime) -> AnswerKey:
    """The answer key of ``run_id``: who the run's agents were (ledger), what they did (their lines) and
    what the Activity Log recorded (both from ``logs``, a haymaker.loganalytics.LogAnalytics)."""
    from haymaker.agentlogs import console_query, lines_of
    from haymaker.loganalytics import LogAnalyticsError
    from haymaker.naming import job_name, resource_group_name, run_resource_group_name

    run = ledger.get_run(run_id)
    if run is None:
        raise InvalidInput(f"run {run_id} is not in the ledger: `haymaker runs` lists the runs it knows")
    start = run.started_at - EARLY
    end = min(now, max(run.expires_at, run.ended_at or run.expires_at) + LATE + DELIVERY)
    if end <= start:
        raise InvalidInput(f"run {run_id} starts at {iso(run.started_at)}: there is nothing to read yet")
    agents = {a.scenario: a for a in ledger.list_agents(run_id)}
    group_of = {s: (agents[s].resource_group if s in agents else "") or resource_group_name(run_id, s)
                for s in run.scenarios}
    borrowed = {s for s in run.scenarios if s in catalog and catalog[s].graph_permissions}
    identities = {s: Identity(s, agents[s].client_id, agents[s].service_principal_object_id,
                              group_of[s] if s in borrowed else "") if s in agents
                  else Identity(s) for s in run.scenarios}
    groups = [group_of[s] for s in run.scenarios] + [run_resource_group_name(run_id)]
    jobs = [job_name(run_id, s) for s in run.scenarios]
    console = logs.rows(lambda a, b: console_query(a, b, jobs=jobs), start, end)
    activity = logs.rows(lambda a, b: activity_query(a, b, identities.values(), groups), start, end)
    read = [("agents' lines", console), ("Activity Log records", activity)]
    expected = {s: expectations(catalog[s]) for s in run.scenarios if s in catalog}
    audit_rows = None
    known = [i for i in identities.values() if i.ids]
    if known and any(plane == "graph" and names for phases in expected.values() for steps in phases.values()
                     for plane, names in steps.values()):
        audit = read_audit(logs, known, start, end)
        if audit is not None:
            read.append(("Entra audit records", audit))
            audit_rows = audit.rows
    for what, got in read:
        if got.partial:
            raise LogAnalyticsError(f"Log Analytics returned only part of the {what} ({'; '.join(got.partial)}): "
                                    "an answer key built from it would be wrong; try again later")
    mistakes = {s: {(phase, step.name) for phase, steps in catalog[s].phases.items() for step in steps
                    if step.expect_failure} for s in run.scenarios if s in catalog}
    key = answer_key(run_id, start=start, end=end, now=now, events=[line.event for line in lines_of(
        console.rows, run_id)], rows=activity.rows, identities=identities, groups=groups, expected=expected,
        mistakes=mistakes, audit_rows=audit_rows)
    key.notes += [f"{s}: not in the catalog any more, so its steps expect nothing" for s in run.scenarios
                  if s not in catalog]
    if not key.steps:
        key.notes.append("no agent lines in the workspace for this run: its jobs may not have started, or their "
                         "lines have not arrived yet")
    return key


def expectations(scenario) -> dict[str, dict[str, tuple[str, tuple[str, ...]]]]:
    """``{phase: {step: (plane, names)}}``: a plane: graph step expects its audit activities, any other step
    its ARM operations; a data-plane step expects nothing either log holds."""
    from scenarios.expect import command_plane
    from scenarios.steps import split_step

    out = {}
    for phase, steps in scenario.phases.items():
        out[phase] = {}
        for s in steps:
            plane = s.plane or command_plane(split_step(s.run))  # reads declare no plane
            out[phase][s.name] = (plane, tuple(s.audit if plane == "graph" else s.expect))
    return out


def read_audit(logs, identities: list[Identity], start: datetime, end: datetime):
    """The identities' AuditLogs rows (a haymaker.loganalytics.Rows); None when the workspace has no such table."""
    from haymaker.loganalytics import UnknownName

    try:
        return logs.rows(lambda a, b: audit_query(a, b, identities), start, end)
    except UnknownName as e:
        if e.name == AUDIT_TABLE:
            return None
        raise


AUDIT_RECENT = timedelta(days=7)  # a HayMaker tenant changes its directory every run: a week without a record is none


def latest_audit(logs, now: datetime) -> datetime | None:
    """When the newest Entra audit record of the last AUDIT_RECENT reached the workspace (None: none did).
    Raises haymaker.loganalytics.UnknownName when the workspace has no AuditLogs table at all."""
    start = now - AUDIT_RECENT
    kql = "\n".join([AUDIT_TABLE, f"| where TimeGenerated between ({kql_time(start)} .. {kql_time(now)})",
                     "| project TimeGenerated", "| order by TimeGenerated desc", "| take 1"])
    rows, _ = logs.query(kql, start, now)
    return rows[0]["TimeGenerated"] if rows else None
