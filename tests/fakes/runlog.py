"""What a run leaves in the workspace, written into the Log Analytics stand-in: the agents' event lines
(as haymaker/agent/runner.py writes them), the Activity Log records their requests cause (one
``Start`` and one final record per request, sharing a correlation id, as ARM writes them) and the Entra
audit records their directory steps cause (one per activity, initiated by the agent's identity).

``synthetic_run`` lays out a whole run of catalog scenarios for the benchmark; tests write the few
lines and records each case needs with ``RunLog``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from haymaker.naming import job_name, resource_group_name, run_resource_group_name
from haymaker.runspec import iso
from tests.fakes.loganalytics import FakeLogAnalytics

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
DEPLOYER_OBJECT_ID = "7d0e0000-0000-4000-8000-0000000de910"
DEPLOYER_CLIENT_ID = "0d1e2f3a-0000-4000-8000-00000000d3p1"


@dataclass(frozen=True)
class Agent:
    run_id: str
    scenario: str
    client_id: str
    object_id: str

    @property
    def job(self) -> str:
        return job_name(self.run_id, self.scenario)

    @property
    def group(self) -> str:
        return resource_group_name(self.run_id, self.scenario)


def agent(run_id: str, scenario: str) -> Agent:
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"haymaker/{run_id}/{scenario}")
    return Agent(run_id, scenario, str(uuid.uuid5(ns, "client")), str(uuid.uuid5(ns, "object")))


def resource_id(group: str, operation: str, name: str = "res1") -> str:
    """A resource id of the operation's type in ``group``: ``Microsoft.Network/virtualNetworks/write`` →
    ``…/providers/Microsoft.Network/virtualNetworks/res1``; child types get a name per level."""
    namespace, *types, _verb = operation.split("/")
    path = "/".join(f"{t}/{name if i == len(types) - 1 else 'parent1'}" for i, t in enumerate(types))
    if namespace.lower() == "microsoft.resources" and types[:1] == ["subscriptions"]:
        return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/{namespace}/{path}"


class RunLog:
    def __init__(self, la: FakeLogAnalytics, run_id: str):
        self.la = la
        self.run_id = run_id

    def line(self, who: Agent, at: datetime, event: str, *, delay: timedelta = timedelta(seconds=3), **fields):
        """One event line, stamped ``at`` by the agent, reaching the table ``delay`` later."""
        record = {"time": iso(at), "run_id": self.run_id, "scenario": who.scenario, "event": event,
                  **{k: v for k, v in fields.items() if v is not None}}
        self.la.add_console_line(who.job, record, at + delay)
        return record

    def step(self, who: Agent, phase: str, step: str, start: datetime, seconds: float, *, ok: bool = True,
             attempt: int = 1, command: str = "az ...", **fields) -> datetime:
        end = start + timedelta(seconds=seconds)
        self.line(who, end, "step", phase=phase, step=step, attempt=attempt, started_at=iso(start), command=command,
                  ok=ok, exit_code=0 if ok else 1, seconds=round(seconds, 3), stderr=None if ok else "ERROR: ...",
                  **fields)
        return end

    def record(self, caller: str, app_id: str, at: datetime, operation: str, status: str, resource: str,
               correlation: str | None = None, category: str = "Administrative") -> dict:
        return self.la.add_activity(at=at, operation=operation, status=status, caller=caller, app_id=app_id,
                                    resource_id=resource, correlation_id=correlation, category=category)

    def request(self, who: Agent | None, at: datetime, operation: str, resource: str | None = None, *,
                final: str | None = "Success", took: timedelta = timedelta(seconds=20), accepted: bool = False,
                audits: int = 0) -> str:
        """One ARM request: its Start record at ``at``, an Accept record when it runs long (``accepted``),
        its final record ``took`` later (none when ``final`` is None), and ``audits`` Azure Policy
        evaluations of it. ``who`` None: the run deployer."""
        caller, app_id = (who.object_id, who.client_id) if who else (DEPLOYER_OBJECT_ID, DEPLOYER_CLIENT_ID)
        group = who.group if who else run_resource_group_name(self.run_id)
        resource = resource or resource_id(group, operation)
        correlation = str(uuid.uuid4())
        self.record(caller, app_id, at, operation, "Start", resource, correlation)
        if accepted:
            self.record(caller, app_id, at + timedelta(seconds=1), operation, "Accept", resource, correlation)
        for n in range(audits):
            self.record(caller, app_id, at + timedelta(seconds=1), ("Microsoft.Authorization/policies/audit/action",
                        "Microsoft.Authorization/policies/auditIfNotExists/action")[n % 2], "Success", resource,
                        correlation, category="Policy")
        if final:
            self.record(caller, app_id, at + took, operation, final, resource, correlation)
        return correlation


def synthetic_run(la: FakeLogAnalytics, run_id: str, scenarios: list, start: datetime, *, hours: float = 8,
                  operate_steps: int = 18, audits: int = 2, write_share: float = 0.0, seed: int = 7,
                  entra: bool = True) -> dict:
    """A run of ``scenarios`` (catalog Scenario objects) over ``hours``: per agent its start line, deploy
    steps back to back, ``operate_steps`` operate steps through the day (a ``write_share`` of them drawn
    from the steps that change something, the rest from all), cleanup, its end line; each
    expected operation as a request (Start, Accept for writes and deletes, Success, and ``audits`` Azure
    Policy records per write) and each agent's group created by the deployer; with ``entra``, each directory
    step's declared audit activities as Entra records of the agent's identity. Returns counts of what it wrote."""
    rng = random.Random(seed)
    log = RunLog(la, run_id)
    steps = requests = 0
    for scenario in scenarios:
        who = agent(run_id, scenario.name)
        log.request(None, start - timedelta(minutes=3), "Microsoft.Resources/subscriptions/resourceGroups/write",
                    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{who.group}")
        log.request(None, start - timedelta(minutes=2), "Microsoft.Authorization/roleAssignments/write",
                    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{who.group}/providers/Microsoft.Authorization/"
                    f"roleAssignments/{uuid.uuid4()}")
        requests += 2
        t = start + timedelta(minutes=5)
        log.line(who, t, "agent-start", user_agent=f"haymaker/{run_id}/{scenario.name}")
        plan = [("deploy", s) for s in scenario.phases["deploy"]]
        operate = list(scenario.phases["operate"])
        changing = [s for s in operate if s.expect] or operate
        plan += [("operate", rng.choice(changing if rng.random() < write_share else operate))
                 for _ in range(operate_steps)]
        plan += [("cleanup", s) for s in scenario.phases["cleanup"]]
        durations = [rng.uniform(3, 90) for _ in plan]
        # The working day's steps spread over the hours the run lasts, their own time included.
        gap = max(timedelta(seconds=5), (timedelta(hours=hours) - timedelta(seconds=sum(durations) + 2 * len(plan)))
                  / (len(plan) + 1))
        for (phase, step), seconds in zip(plan, durations):
            for n, op in enumerate(step.expect):
                # Writes and deletes run long (Start, Accept, final); Azure Policy audits each write.
                long_running = not op.lower().endswith("/action")
                log.request(who, t + timedelta(seconds=1 + n), op, took=timedelta(seconds=min(seconds - 1.5, 15)),
                            accepted=long_running, audits=audits if op.lower().endswith("/write") else 0)
                requests += 1
            for n, activity in enumerate(step.audit if entra else ()):
                la.add_audit(at=t + timedelta(seconds=1 + n), activity=activity, app_id=who.client_id,
                             service_principal_id=who.object_id, target_type="Directory",
                             target_name=f"haymaker-{run_id}-{scenario.name}")
            log.step(who, phase, step.name, t, seconds, ok=not step.expect_failure,
                     expected_failure=step.expect_failure or None)
            steps += 1
            t += timedelta(seconds=seconds) + (gap if phase == "operate" else timedelta(seconds=2))
        log.line(who, t, "agent-end", exit_code=0, outcome="completed")
    return {"steps": steps, "requests": requests, "activity_rows": len(la.tables["AzureActivity"].rows),
            "console_rows": len(la.tables["ContainerAppConsoleLogs_CL"].rows),
            "audit_rows": len(la.tables["AuditLogs"].rows)}
