"""`haymaker try`: one scenario in the operator's own subscription, without the platform.

A try is a run like any other: a run id, the stack ``run-<id>`` in haymaker's backend, the policy pack, the
ledger and the same teardown. The try variant of the run program (stacks/run.py ``try_program``) declares
only the scenario's resource group. The agent lives the scenario's working day on this machine, as the
operator's own `az login` (no service principal, so the Activity Log names the operator), with the
day's pauses compressed (haymaker/agent/clock.py ``CompressedClock``). Whatever happens in between (a
failed step, Ctrl-C, an exception), the stack is torn down and nothing being left is verified; then, when a
Log Analytics workspace is configured, the answer key is built from the agent's lines kept here.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from haymaker.azure import DEPLOYER_KINDS, Azure, AzureAuthError, GraphDenied
from haymaker.errors import HayMakerError, Refused
from haymaker.lifecycle import Lifecycle, check_on_demand_limit
from haymaker.runspec import RunSpec, iso, parse_iso

# Around the compressed day: deploy and cleanup at their own speed, then the teardown.
ALLOWANCE = timedelta(minutes=90)
TEARDOWN_MARGIN = timedelta(minutes=30)  # the agent is stopped this long before the stack expires
BEFORE_WORK = timedelta(minutes=10)  # the agent starts this long before the working morning
# How the agent is told the try's time is up: the path a signal takes, cleanup first.
TIME_LIMIT = getattr(signal, "SIGALRM", signal.SIGTERM)
GROUP_OPERATIONS = ("microsoft.resources/subscriptions/resourcegroups/write",
                    "microsoft.resources/subscriptions/resourcegroups/delete")


def try_duration_hours(minutes: int) -> int:
    """The stack's lifetime: the day's minutes plus the allowance, in whole hours (what the reaper reads)."""
    return math.ceil((timedelta(minutes=minutes) + ALLOWANCE) / timedelta(hours=1))


@dataclass(frozen=True)
class Trial:
    """What one try is: its spec, settings (location and subscription pinned), scenario and operator."""

    spec: RunSpec
    settings: object  # EnvironmentSettings
    scenario: object  # scenarios.catalog.Scenario
    account: object  # haymaker.trycheck.Account
    minutes: int
    day_hours: int  # the working day the agent lives, compressed into ``minutes``
    on_demand_limit: int
    day_from: datetime  # where that day begins (day_start)

    @property
    def time_scale(self) -> float:
        return self.day_hours * 60 / self.minutes

    @property
    def cost_usd(self) -> float:
        """At most: the scenario's hourly estimate for as long as the stack may live; the agent costs nothing."""
        return self.scenario.estimated_hourly_cost_usd * self.spec.duration_hours

    @property
    def resource_group(self) -> str:
        from haymaker.naming import resource_group_name

        return resource_group_name(self.spec.run_id, self.scenario.name)


def day_start(calendar, now: datetime) -> datetime:
    """Where a try's day begins: now during working hours, else shortly before the company's next working
    morning, so a try shows a working day whenever it runs (a run's day is wherever its hours fall)."""
    if calendar.period(now) in ("work", "lunch"):
        return now
    local = calendar.local(now)
    for n in range(8):
        day = local.date() + timedelta(days=n)
        morning = calendar.at(day, calendar.start)
        if calendar.is_workday(day) and morning > now:
            return max(now, (morning - BEFORE_WORK).astimezone(timezone.utc))
    return now


def try_spec(run_id: str, environment: str, scenario: str, minutes: int, *, actor: str, git_sha: str) -> RunSpec:
    return RunSpec(run_id=run_id, environment=environment, trigger="local", scenarios=(scenario,),
                   duration_hours=try_duration_hours(minutes), git_sha=git_sha, actor=actor, variant="try")


def declare(spec: RunSpec, settings, catalog) -> tuple[list, dict]:
    """What the try's stack declares and exports, under Pulumi's mocks (as `haymaker plan` evaluates a run)."""
    from haymaker.mockrun import evaluate
    from stacks.run import try_program

    declared, outputs = evaluate(lambda: try_program(spec, settings, catalog), project="haymaker",
                                 stack=spec.stack_name, platform_outputs={})
    return declared, outputs or {}


def refuse_unless_allowed(spec: RunSpec, settings, catalog) -> list:
    """The policy pack over the try's stack, offline, before anything is created; returns the declarations."""
    from haymaker import policycheck

    declared, outputs = declare(spec, settings, catalog)
    violations = policycheck.check(declared, outputs, spec.stack_tags(), policycheck.load_policy_config(spec.environment))
    mandatory = [v for v in violations if v.enforcement == "mandatory"]
    if mandatory:
        raise Refused("the policy pack refuses the try; nothing was created: "
                      + "; ".join(v.line() for v in mandatory))
    return declared


# --- the lifecycle and the cloud, as the operator -------------------------------------------------------

class TryLifecycle(Lifecycle):
    """A try's lifecycle: the same up and teardown; there is no job to check, the agent runs here. It keeps
    the last teardown's result: a failed `up` tears the stack down itself, and a try need not do it twice."""

    last_teardown = None

    def check_jobs(self, inventory: list, run_rg: str, start_at: datetime) -> dict[str, str]:
        return {entry["scenario"]: "deployed" for entry in inventory}

    def teardown(self, run_id: str, **kwargs):
        self.last_teardown = super().teardown(run_id, **kwargs)
        return self.last_teardown


class TryAzure(Azure):
    """The Azure adapter signed in as the operator. Teardown also looks in the directory, as them; where
    their tenant does not let them (Graph refuses, or gives az no token) the look is noted, not failed: a
    try declares nothing there and refuses every scenario that works there (haymaker/trycheck.py)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.notes: list[str] = []

    def entra_objects(self, run_id: str, via: str = "", kinds: tuple[str, ...] = DEPLOYER_KINDS) -> list:
        return self._as_far_as_allowed(Azure.entra_objects, run_id, via, kinds)

    def deleted_entra_objects(self, run_id: str, via: str = "", kinds: tuple[str, ...] = DEPLOYER_KINDS) -> list:
        return self._as_far_as_allowed(Azure.deleted_entra_objects, run_id, via, kinds)

    def _as_far_as_allowed(self, listing, *args) -> list:
        try:
            return listing(self, *args)
        except (GraphDenied, AzureAuthError) as e:
            if not self.notes:
                self.notes.append(f"the directory could not be read as you ({str(e).splitlines()[0][:200]}): only "
                                  "Azure was verified; a try creates nothing in the directory")
            return []


# --- the agent's lines ---------------------------------------------------------------------------------

class AgentLines:
    """Where the agent's EventLog writes: each line gets real times (the answer key joins the Activity Log
    on them; the schedule's time stays as ``schedule_time``), is kept in a file and in memory, and shown."""

    def __init__(self, path: Path, clock, on_event=lambda event: None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.clock, self.on_event = path, clock, on_event
        self.events: list[dict] = []
        self._file = open(path, "w", encoding="utf-8")
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _line(self, line: str) -> None:
        event = json.loads(line)
        ahead = timedelta(seconds=self.clock.ahead())
        if ahead:
            event["schedule_time"] = event["time"]
            for key in ("time", "started_at"):
                if key in event:
                    event[key] = iso(parse_iso(event[key]) - ahead)
        self._file.write(json.dumps(event) + "\n")
        self.events.append(event)
        self.on_event(event)


def state_of(event: dict) -> str | None:
    """An agent event as the scenario's state in the progress display (None: no change)."""
    name, phase = event.get("event"), event.get("phase", "")
    if name == "agent-start":
        return "agent: signing in as you"
    if name == "phase-start" and phase == "operate":
        return f"operate: {event.get('slots', 0)} step(s) in the day"
    if name == "phase-start" and phase != "login":
        return phase
    if name == "step" and phase == "login" and event.get("ok"):
        return None
    if name == "step":
        return f"{phase}: {event.get('step')}" + ("" if event.get("ok") or event.get("expected_failure") else " failed")
    if name == "retry":
        return f"{phase}: {event.get('step')} retry in {event.get('delay_seconds', 0):.0f} s"
    if name == "signal":
        return "stopping: cleanup first"
    if name == "agent-end":
        return f"agent {event.get('outcome')}"
    return None


def agent_env(t: Trial, resource_group: str, expires_at: datetime, base: dict | None = None) -> dict[str, str]:
    """The job's environment, as the operator's: no secret, the operator's object id as the agent's."""
    from haymaker.agent.config import LOGIN_USER

    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "AZURE_CLIENT_SECRET"}
    a = t.account
    env.update({"HAYMAKER_RUN_ID": t.spec.run_id, "HAYMAKER_SCENARIO": t.scenario.name,
                "HAYMAKER_EXPIRES_AT": iso(expires_at), "HAYMAKER_RESOURCE_GROUP": resource_group,
                "HAYMAKER_LOCATION": t.settings.location,
                "HAYMAKER_CLEANUP_BUFFER_MINUTES": str(max(t.settings.cleanup_buffer_minutes, t.scenario.cleanup_minutes)),
                "AZURE_TENANT_ID": a.tenant_id, "AZURE_SUBSCRIPTION_ID": a.subscription_id,
                "AZURE_CLIENT_ID": a.client_id, "HAYMAKER_AGENT_OBJECT_ID": a.object_id, "HAYMAKER_LOGIN": LOGIN_USER})
    return env


# --- the try ---------------------------------------------------------------------------------------------

@dataclass
class TryResult:
    run_id: str
    scenario: str
    resource_group: str
    deployed: bool = False
    agent: dict = field(default_factory=dict)  # exit_code, outcome, steps, failed, lines
    teardown: object = None  # TeardownResult, or None when it broke (then ``error`` says why)
    answer_key: dict = field(default_factory=dict)  # the summary, or {"skipped": why}
    stopped_by: str = ""  # interrupted | time limit
    error: str = ""
    notes: list = field(default_factory=list)
    record: str = ""
    events: list = field(default_factory=list, repr=False)  # the agent's lines (in their file, not in the record)

    @property
    def left_behind(self) -> bool:
        return self.teardown is None or self.teardown.outcome == "failed"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["teardown"] = self.teardown.as_dict() if self.teardown is not None else None
        del d["events"]
        return d


def run_try(t: Trial, life: Lifecycle, *, stop, audit_dir: Path, logs=None, wait_for_logs: bool = False,
            now=lambda: datetime.now(timezone.utc)) -> TryResult:
    """Deploy the try's stack, live the day, then tear down and verify, whatever happened in between.
    ``stop``: the haymaker.agent.runner.StopSignal installed for SIGINT/SIGTERM around the whole try."""
    spec = t.spec
    result = TryResult(spec.run_id, t.scenario.name, t.resource_group)
    progress = life.progress

    def show(state: str) -> None:
        if progress is not None:
            progress.set(spec.run_id, t.scenario.name, state)

    check_on_demand_limit(spec, life.driver.list_run_stacks(), now(), t.on_demand_limit)  # refused: nothing made
    teardown_at = None
    try:
        up = life.up(spec, t.settings, on_demand_limit=t.on_demand_limit, cost_usd=t.cost_usd)
        result.deployed = True
        inventory = {e["scenario"]: e for e in up.inventory}.get(t.scenario.name, {})
        result.resource_group = inventory.get("resource_group_name") or result.resource_group
        if not stop.event.is_set():
            _live_day(t, result, stop, audit_dir / f"{spec.run_id}.agent.jsonl", now, show)
    except Exception as e:  # noqa: BLE001 - whatever broke (a failed deploy too), the teardown below runs and says
        result.error = str(e) if isinstance(e, HayMakerError) else f"{type(e).__name__}: {e}"
    finally:
        if stop.signum is not None:
            result.stopped_by = "time limit" if stop.signum == TIME_LIMIT else "interrupted"
        teardown_at = now()
        done = getattr(life, "last_teardown", None)  # a failed `up` tore the stack down already
        try:
            result.teardown = done if done is not None and done.outcome != "failed" else life.teardown(spec.run_id)
        except Exception as e:  # noqa: BLE001 - said, with what to do
            result.error = "; ".join(filter(None, (result.error, f"teardown broke: {e}: run `haymaker down "
                                                                  f"{spec.run_id}` to finish it")))
    result.notes += getattr(life.azure, "notes", [])
    try:
        result.answer_key = _answer_key(t, result, logs, stop, wait_for_logs, teardown_at, audit_dir, now, show)
    except Exception as e:  # noqa: BLE001 - the teardown is done: say why there is no answer key, do not crash
        said = str(e) if isinstance(e, HayMakerError) else f"{type(e).__name__}: {e}"
        result.answer_key = {"skipped": f"the answer key could not be built: {said}"}
    try:
        result.record = str(_record(t, result, audit_dir, life))
    except OSError as e:
        result.notes.append(f"the record could not be written to {audit_dir}: {e}")
    return result


def _live_day(t: Trial, result: TryResult, stop, lines_path: Path, now, show) -> None:
    """The agent's day on this machine; what it did lands in ``result`` even when it breaks."""
    from haymaker.agent.clock import CompressedClock
    from haymaker.agent.runner import run_agent

    clock = CompressedClock(t.time_scale, start=t.day_from)
    def shown(event: dict) -> None:
        state = state_of(event)
        if state:
            show(state)

    lines = AgentLines(lines_path, clock, shown)
    # Stop the day well before the stack expires, so the teardown runs while its expiry still holds.
    limit = threading.Timer(max(0.0, (t.spec.expires_at - TEARDOWN_MARGIN - now()).total_seconds()), stop,
                            args=(TIME_LIMIT,))
    limit.daemon = True
    limit.start()
    code = None
    try:
        code = run_agent(agent_env(t, result.resource_group, clock.now() + timedelta(hours=t.day_hours)), clock=clock,
                         stop=stop, out=lines)
    finally:
        limit.cancel()
        lines.close()
        steps = [e for e in lines.events if e.get("event") == "step"]
        end = next((e for e in reversed(lines.events) if e.get("event") == "agent-end"), {})
        result.events = lines.events
        result.agent = {"exit_code": code, "outcome": end.get("outcome", "broke"), "steps": len(steps),
                        "failed": sum(1 for e in steps if not e.get("ok") and not e.get("expected_failure")),
                        "lines": str(lines_path)}


def _answer_key(t: Trial, result: TryResult, logs, stop, wait: bool, teardown_at, audit_dir: Path, now,
                show) -> dict:
    """The answer key from the agent's lines and the workspace's Activity Log, or why it was skipped."""
    events = result.events
    if logs is None:
        return {"skipped": "no Log Analytics workspace is configured (HAYMAKER_LOG_ANALYTICS_WORKSPACE): the answer "
                           "key needs one that receives this subscription's Activity Log"}
    steps = [e for e in events if e.get("event") == "step"]
    if not steps:
        return {"skipped": "the agent ran no step, so there is nothing to match"}
    from haymaker.truth import DELIVERY

    last = max(parse_iso(e["time"]) for e in steps)
    if wait and stop.signum is None and now() < last + DELIVERY:
        show(f"answer key: waiting for the Activity Log until {last + DELIVERY:%H:%M}Z (Ctrl-C: build it now)")
        stop.event.wait((last + DELIVERY - now()).total_seconds())  # Ctrl-C: build it now, not final
    recs, doc = build_answer_key(t, events, logs, start=parse_iso(events[0]["time"]), end=teardown_at, now=now())
    from haymaker import truthreport

    (audit_dir / f"{t.spec.run_id}.truth.jsonl").write_text(truthreport.to_jsonl(recs), encoding="utf-8")
    report = audit_dir / f"{t.spec.run_id}.truth.md"
    report.write_text(truthreport.to_markdown(recs, doc), encoding="utf-8")
    keep = ("coverage", "matched", "expected", "events", "complete", "steps_in_delivery_window", "final_after", "notes")
    return {**{k: doc[k] for k in keep}, "report": str(report)}


def build_answer_key(t: Trial, events: list[dict], logs, *, start: datetime, end: datetime, now: datetime):
    """The truth machinery over a try: the operator is the agent's identity, confined to the try's group;
    the stack's own creation and deletion of the group (before the first step, after the last) are the
    platform's, as a run deployer's would be."""
    from haymaker import truthreport
    from haymaker.truth import SKEW, Identity, activity_query, answer_key, run_expectations

    a, group = t.account, t.resource_group
    identity = Identity(t.scenario.name, client_id=a.client_id if a.kind == "application" else "",
                        object_id=a.object_id, group=group, callers=a.callers)
    window = (start - SKEW, end + SKEW)
    got = logs.rows(lambda low, high: activity_query(low, high, [identity], [group]), *window)
    if got.partial:
        raise HayMakerError(f"Log Analytics returned only part of the Activity Log records ({'; '.join(got.partial)})")
    first_step = min(parse_iso(e.get("started_at") or e["time"]) for e in events if e.get("event") == "step")

    def stack_own(row: dict) -> bool:
        at = row["TimeGenerated"]
        return ((row.get("OperationNameValue") or "").lower() in GROUP_OPERATIONS
                and (row.get("ResourceGroup") or "").lower() == group.lower() and not first_step <= at <= end)

    rows = [{**row, "Caller": "haymaker try (its stack)", "AppId": ""} if stack_own(row) else row for row in got.rows]
    expected, mistakes = run_expectations([t.scenario])
    key = answer_key(t.spec.run_id, start=window[0], end=window[1], now=now, events=events, rows=rows,
                     identities={t.scenario.name: identity}, groups=[group], expected=expected, mistakes=mistakes)
    recs = truthreport.records(key)
    return recs, truthreport.summary(key, recs)


def try_document(t: Trial, result: TryResult) -> dict:
    """The try's outcome as the record keeps it and `--json` prints it."""
    return {"run": t.spec.to_dict(), "subscription": t.account.subscription_id,
            "actor": {"kind": t.account.kind, "name": t.account.name, "object_id": t.account.object_id},
            "minutes": t.minutes, "day_hours": t.day_hours, "day_from": iso(t.day_from),
            "time_scale": round(t.time_scale, 2), **result.as_dict()}


def _record(t: Trial, result: TryResult, audit_dir: Path, life) -> Path:
    """The try's outcome beside the run's audit record, and in the ledger."""
    doc = try_document(t, result)
    doc.pop("record", None)
    path = audit_dir / f"{t.spec.run_id}.try.json"
    audit_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    life.ledger.add_event(t.spec.run_id, "try", {k: v for k, v in doc.items() if k != "teardown"})
    return path


