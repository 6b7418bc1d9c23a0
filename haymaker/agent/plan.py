"""The day an agent would live, computed offline: ``haymaker agent plan``.

Times are offsets from the agent's start (the run's start plus the environment's start delay).
Deploy runs first, step after step; the runner lays operate steps over the time left once deploy
ends, so with a slow deploy the real operate times are later and closer together than planned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from haymaker.agent.config import user_agent
from haymaker.agent.render import SECRET, placeholder_values, prepare_day
from haymaker.agent.schedule import operate_slots
from haymaker.naming import resource_group_name
from haymaker.runspec import check_run_id, iso
from haymaker.settings import EnvironmentSettings
from scenarios.catalog import Scenario

# Values the plan cannot know offline; the job's environment supplies them at run time.
OFFLINE_IDS = {"subscription_id": "<subscription-id>", "tenant_id": "<tenant-id>", "client_id": "<client-id>",
               "agent_object_id": "<agent-object-id>"}


@dataclass(frozen=True)
class PlanEntry:
    offset_seconds: float
    at: str
    phase: str
    step: str
    command: str


def plan_day(scenario: Scenario, *, run_id: str, duration_hours: int, settings: EnvironmentSettings,
             seed: int) -> dict:
    started = check_run_id(run_id)
    agent_start = started + timedelta(minutes=settings.start_delay_minutes)
    expires_at = started + timedelta(hours=duration_hours)
    cleanup_at = expires_at - timedelta(minutes=settings.cleanup_buffer_minutes)
    day = prepare_day(scenario, placeholder_values(
        run_id=run_id, scenario=scenario.name, resource_group=resource_group_name(run_id, scenario.name),
        location=settings.location, password=SECRET, **OFFLINE_IDS))

    def entry(at, phase, step, command):
        return PlanEntry((at - agent_start).total_seconds(), iso(at), phase, step, command.shown)

    entries = [entry(agent_start, "deploy", name, command) for name, command in day.deploy]
    entries += [entry(s.at, "operate", s.step.name, day.operate[s.step.name])
                for s in operate_slots(day.operate_steps, agent_start, cleanup_at, seed)]
    entries += [entry(cleanup_at, "cleanup", name, command) for name, command in day.cleanup]
    return {"scenario": scenario.name, "run_id": run_id, "seed": seed, "agent_start": iso(agent_start),
            "cleanup_at": iso(cleanup_at), "expires_at": iso(expires_at),
            "user_agent": user_agent(run_id, scenario.name), "entries": [asdict(e) for e in entries]}


def offset(seconds: float) -> str:
    s = int(seconds)
    return f"+{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
