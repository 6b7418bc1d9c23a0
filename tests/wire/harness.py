"""The wire harness: every loadable step, run by the image's azure-cli against the stand-ins, compared
with what the step declares.

``wire_steps`` renders the catalog as the agent does; ``run_steps`` hands them, scenario by scenario
and in phase order, to tests/wire/run_steps.py in the `.azcli` Python; ``verdicts`` compares what each
step sent with its ``expect`` (ARM) and ``audit`` (Entra) declarations.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from haymaker.agent.render import placeholder_values, render_step
from scenarios.audit import fold
from scenarios.expect import changes_something, command_plane, command_words
from scenarios.extensions import extension_for
from scenarios.operations import load_snapshot
from tests.wire.wire_map import INVISIBLE, arm_operations, audit_activities

ROOT = Path(__file__).resolve().parents[2]
AZ_PYTHON = ROOT / ".azcli" / "bin" / "python"
RUNNER = ROOT / "tests" / "wire" / "run_steps.py"
# Where `.azcli` keeps CLI extensions, if any could be installed here (none can: see README "Limits").
EXTENSION_DIR = ROOT / ".azcli" / "extensions"
RUN_ID = "20261128t0900z-ab12"
# Version-4 GUIDs, as Azure issues them (az bot create checks --appid is one).
IDS = {"subscription_id": "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", "tenant_id": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
       "client_id": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b", "agent_object_id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"}
LOCATION = "westeurope"


@dataclass(frozen=True)
class WireStep:
    scenario: str
    phase: str
    name: str
    argv: tuple[str, ...]
    expect: tuple[str, ...] = ()
    expect_failure: bool = False
    plane: str | None = None
    audit: tuple[str, ...] | None = None  # None: the step declares no audit activities at all
    extension: str | None = None

    @property
    def key(self) -> str:
        return f"{self.scenario}/{self.phase}/{self.name}"

    @property
    def command(self) -> str:
        return "az " + " ".join(command_words(list(self.argv)))


@dataclass
class Verdict:
    step: WireStep
    result: dict
    problems: list[str] = field(default_factory=list)
    sent: set = field(default_factory=set)
    activities: list = field(default_factory=list)
    invisible: set = field(default_factory=set)
    excluded: set = field(default_factory=set)  # POST actions that are not published operations (rule 2)
    data_plane: list = field(default_factory=list)  # hosts outside the stand-ins the step failed to reach

    @property
    def ok(self) -> bool:
        return not self.problems


def resource_group(scenario: str) -> str:
    return f"haymaker-{RUN_ID}-{scenario}"


def wire_steps(scenarios) -> list[WireStep]:
    """Every step of the scenarios (a Catalog or Scenario objects), rendered as the agent renders it, in run order."""
    out = []
    for s in getattr(scenarios, "scenarios", {}).values() if hasattr(scenarios, "scenarios") else scenarios:
        values = placeholder_values(run_id=RUN_ID, scenario=s.name, resource_group=resource_group(s.name),
                                    location=LOCATION, subscription_id=IDS["subscription_id"],
                                    tenant_id=IDS["tenant_id"], client_id=IDS["client_id"],
                                    agent_object_id=IDS["agent_object_id"], password="Xa1!" + "b" * 20)
        for phase in ("deploy", "operate", "cleanup"):
            for step in s.phases[phase]:
                audit = getattr(step, "audit", None)
                out.append(WireStep(s.name, phase, step.name, render_step(step.run, values).argv, tuple(step.expect),
                                    step.expect_failure, step.plane, tuple(audit) if audit is not None else None,
                                    extension_for(step.run)))
    return out


def loadable_extensions() -> set[str]:
    """Extensions the `.azcli` environment can load (installed under EXTENSION_DIR)."""
    if not EXTENSION_DIR.is_dir():
        return set()
    return {p.name for p in EXTENSION_DIR.iterdir() if p.is_dir() and any(p.glob("azext_*"))}


def runnable(step: WireStep, extensions: set[str]) -> bool:
    """ARM- and Graph-plane steps whose command az can load; data-plane steps talk to services the
    stand-ins are not."""
    return command_plane(list(step.argv)) != "data" and (step.extension is None or step.extension in extensions)


def select(steps: list[WireStep], extensions: set[str]) -> tuple[list[WireStep], set[str]]:
    """(the steps to run, the keys of those that come after a step of their scenario that cannot run here:
    the stand-in then assumes what that step would have created)."""
    chosen, after, blocked = [], set(), set()
    for step in steps:
        if runnable(step, extensions):
            chosen.append(step)
            if step.scenario in blocked:
                after.add(step.key)
        elif step.extension is not None:
            blocked.add(step.scenario)
    return chosen, after


def run_steps(steps: list[WireStep], after_skipped: set[str] = frozenset(), timeout: float = 900) -> dict[str, dict]:
    """{step key: result} from one `.azcli` process; steps of a scenario run in the order given."""
    if not AZ_PYTHON.exists():
        raise RuntimeError("no Azure CLI for the wire harness: run `bash scripts/azcli.sh` (scripts/test.sh does)")
    scenarios: dict[str, list[WireStep]] = {}
    for step in steps:
        scenarios.setdefault(step.scenario, []).append(step)
    job = {**{k: IDS[k] for k in ("subscription_id", "tenant_id", "client_id")}, "location": LOCATION,
           "scenarios": [{"name": name, "resource_group": resource_group(name),
                          "steps": [{"key": s.key, "argv": list(s.argv), "isolated": s.expect_failure,
                                     "after_skipped": s.key in after_skipped} for s in group]}
                         for name, group in scenarios.items()]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "REQUESTS_", "SSL_"))}
    env["AZURE_EXTENSION_DIR"] = str(EXTENSION_DIR)
    out = subprocess.run([str(AZ_PYTHON), str(RUNNER)], input=json.dumps(job), capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"the wire runner failed: {out.stderr[-3000:]}")
    return {r["key"]: r for r in json.loads(out.stdout)}


def verdict(step: WireStep, result: dict, snapshot=None) -> Verdict:
    """What is wrong with one step, as run: a prompt, a refusal it does not declare, operations it sends and
    does not declare, or declares and does not send."""
    snapshot = snapshot or load_snapshot()
    v = Verdict(step, result)
    if result.get("prompted"):
        v.problems.append("az asked for confirmation, which fails without a terminal: add --yes (or the "
                          "command's own no-prompt option)")
    if result.get("runaway"):
        v.problems.append("az kept polling the stand-in: teach tests/wire/standin.py what ends the operation")
    sent, v.excluded, unknown = arm_operations(result["requests"], snapshot)
    v.sent = sent
    v.activities, unknown_graph = audit_activities(result["requests"])
    refused = result["code"] != 0
    if step.expect_failure and not step.expect and command_plane(list(step.argv)) == "arm" \
            and changes_something(list(step.argv)):
        # A mistake az refuses itself: nothing may reach ARM.
        if not refused or sent:
            v.problems.append(f"declared as refused by az (expect_failure, expect: []) but az "
                              f"{'sent ' + ', '.join(sorted(sent)) if sent else 'accepted it'}")
        return v
    # A host outside the stand-ins that az names in its error: a data plane (a vault, a blob, a log stream)
    # this harness does not serve. What the step sent to ARM before it is still compared.
    v.data_plane = sorted(h for h in result.get("outside") or () if h in (result.get("error") or ""))
    if refused and not step.expect_failure and not v.data_plane:
        v.problems.append(f"az failed (exit {result['code']}): {result['error'] or 'no message'}")
    for op in sorted(unknown):
        v.problems.append(f"sends {op}, of a provider the operations snapshot does not cover: add it to the "
                          "scenario's services and run scripts/refresh_operations.py")
    declared = {op.lower(): op for op in step.expect}
    sent_lower = {op.lower(): op for op in sent}
    invisible = {op.lower() for (command, op) in INVISIBLE if command == step.command.removeprefix("az ")}
    v.invisible = {declared[o] for o in declared.keys() - sent_lower.keys() if o in invisible}
    missing = [declared[o] for o in declared.keys() - sent_lower.keys() - invisible]
    extra = [sent_lower[o] for o in sent_lower.keys() - declared.keys()]
    if missing:
        v.problems.append(f"declares {', '.join(sorted(missing))} but az never sends it")
    if extra:
        v.problems.append(f"sends {', '.join(sorted(extra))} but does not declare it in expect")
    for shape in sorted(unknown_graph):
        v.problems.append(f"sends Graph {shape}, which tests/wire/wire_map.py AUDIT does not name")
    if step.audit is not None and not v.data_plane and {fold(a) for a in step.audit} != {fold(a) for a in v.activities}:
        v.problems.append(f"declares audit {sorted(set(step.audit))} but Graph records "
                          f"{sorted(set(v.activities))}")
    return v


def verdicts(steps: list[WireStep], results: dict[str, dict]) -> list[Verdict]:
    snapshot = load_snapshot()
    return [verdict(s, results[s.key], snapshot) for s in steps if s.key in results]
