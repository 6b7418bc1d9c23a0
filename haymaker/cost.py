"""Cost of a run: the agents' Container Apps consumption plus each scenario's declared hourly estimate.

Rates are pay-as-you-go list prices in USD for Azure Container Apps consumption (active usage,
which is what a running job replica is billed at). The monthly free grant is ignored on purpose:
an estimate used for a budget gate should err high.
"""

from __future__ import annotations

from dataclasses import dataclass

# One table of rates; change here when Azure's price list changes.
RATES_USD = {
    "container_apps_vcpu_second": 0.000024,
    "container_apps_gib_second": 0.000003,
}


@dataclass(frozen=True)
class ScenarioCost:
    scenario: str
    agent_usd: float
    resources_usd: float

    @property
    def total_usd(self) -> float:
        return self.agent_usd + self.resources_usd


def agent_seconds(duration_hours: int, cleanup_buffer_minutes: int) -> int:
    """The job can run until its timeout: working hours plus the cleanup buffer."""
    return duration_hours * 3600 + cleanup_buffer_minutes * 60


def scenario_cost(scenario, duration_hours: int, cleanup_buffer_minutes: int) -> ScenarioCost:
    seconds = agent_seconds(duration_hours, cleanup_buffer_minutes)
    agent = seconds * (scenario.cpu * RATES_USD["container_apps_vcpu_second"]
                       + scenario.memory_gib * RATES_USD["container_apps_gib_second"])
    return ScenarioCost(scenario.name, agent, scenario.estimated_hourly_cost_usd * duration_hours)


def run_cost(scenarios, duration_hours: int, cleanup_buffer_minutes: int) -> list[ScenarioCost]:
    return [scenario_cost(s, duration_hours, cleanup_buffer_minutes) for s in scenarios]
