"""The offline plan: build the RunSpec, evaluate the run program under mocks, add cost and time."""

from __future__ import annotations

import dataclasses
import functools
import getpass
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from haymaker import cost as costs
from haymaker import policycheck
from haymaker.deploytime import critical_path
from haymaker.errors import InvalidInput
from haymaker.graphlease import offline_graph_identities
from haymaker.mockrun import MOCK_SUBSCRIPTION_ID, Declared, evaluate, redact, secret_leaves
from haymaker.runspec import RunSpec, iso, new_run_id
from haymaker.selection import SELECTION_FILE, load_selection, pick_on_demand, pick_scheduled, resolve_duration
from haymaker.settings import REPO_ROOT, EnvironmentSettings, load_environment
from scenarios.catalog import Catalog, load_catalog
from scenarios.expect import expected_count, expected_operations

# The input that carries each type's Azure (or Entra) name.
PHYSICAL_NAME_KEYS = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:app:Job": "jobName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
    "azuread:index/application:Application": "displayName",
    "azuread:index/applicationPassword:ApplicationPassword": "displayName",
}


@dataclass
class Plan:
    spec: RunSpec
    settings: EnvironmentSettings
    catalog: Catalog
    budget_usd: float
    declared: list[Declared]
    outputs: dict
    costs: list[costs.ScenarioCost]
    critical_path_seconds: int
    critical_path: list[str]
    violations: list = field(default_factory=list)  # policycheck.Violation

    @property
    def mandatory_violations(self) -> list:
        return [v for v in self.violations if v.enforcement == "mandatory"]

    @functools.cached_property
    def secrets(self) -> set[str]:
        return secret_leaves(*(d.outputs for d in self.declared), *(d.inputs for d in self.declared))

    @property
    def custom_resources(self) -> list[Declared]:
        return [d for d in self.declared if d.custom]

    @property
    def cost_usd(self) -> float:
        return sum(c.total_usd for c in self.costs)

    @property
    def agents_usd(self) -> float:
        return sum(c.agent_usd for c in self.costs)

    @property
    def scenario_resources_usd(self) -> float:
        return sum(c.resources_usd for c in self.costs)

    @property
    def over_budget(self) -> bool:
        return self.cost_usd > self.budget_usd

    @functools.cached_property
    def _by_scenario(self) -> dict[str | None, list[Declared]]:
        """Custom resources grouped by the ScenarioAgent they sit under (None: run-level)."""
        groups: dict[str | None, list[Declared]] = {name: [] for name in self.spec.scenarios}
        groups[None] = []
        for d in self.custom_resources:
            parent = d.parent.rsplit("::", 1)[-1] if "ScenarioAgent::" in d.parent else None
            groups.setdefault(parent, []).append(d)
        return groups

    def resources_of(self, scenario: str | None) -> list[Declared]:
        """Resources under a scenario's component (or, for None, the run-level ones)."""
        return self._by_scenario.get(scenario, [])

    def to_json(self) -> dict:
        s = self.spec
        return {
            "run": {"run_id": s.run_id, "stack": s.stack_name, "environment": s.environment,
                    "trigger": s.trigger, "size": s.size, "duration_hours": s.duration_hours,
                    "started_at": iso(s.started_at), "expires_at": iso(s.expires_at),
                    "git_sha": s.git_sha, "actor": s.actor, "location": self.settings.location},
            "scenarios": [
                {"name": name, "area": self.catalog[name].area,
                 "cost_usd": round(c.total_usd, 4),
                 "resources": [resource_json(d) for d in self.resources_of(name)],
                 **expected_json(self.catalog[name])}
                for name, c in zip(s.scenarios, self.costs)
            ],
            "run_resources": [resource_json(d) for d in self.resources_of(None)],
            "resources_total": len(self.custom_resources),
            "cost": {"usd": round(self.cost_usd, 2), "budget_usd": self.budget_usd,
                     "agents_usd": round(self.agents_usd, 2),
                     "scenario_resources_usd": round(self.scenario_resources_usd, 2),
                     "rates_usd": costs.RATES_USD},
            "critical_path_seconds": self.critical_path_seconds,
            "critical_path": self.critical_path,
            "policy": {"violations": [v.as_dict() for v in self.violations]},
            "outputs": redact(self.outputs, self.secrets),
            "stack_tags": s.stack_tags(),
            "declared": [declared_json(d, self.secrets) for d in self.declared],
        }


def resource_json(d: Declared) -> dict:
    key = PHYSICAL_NAME_KEYS.get(d.type)
    physical = d.inputs.get(key) if key else None
    return {"type": d.type, "name": d.name, "physical_name": physical if isinstance(physical, str) else None}


def expected_json(scenario) -> dict:
    """The ARM operations the scenario's steps declare, per phase per step (steps that declare none are
    left out), and their count over one pass of the steps."""
    per_step = expected_operations(scenario)
    return {"expected_operations": {phase: {step: list(ops) for step, ops in steps.items() if ops}
                                    for phase, steps in per_step.items()},
            "expected_operations_count": expected_count(scenario)}


def declared_json(d: Declared, secrets: set[str]) -> dict:
    """One registration, secrets redacted, so `haymaker policy check` can re-run the validators."""
    return {"urn": d.urn, "id": d.id, "type": d.type, "name": d.name, "custom": d.custom, "parent": d.parent,
            "dependencies": d.dependencies, "property_dependencies": d.property_dependencies,
            "inputs": redact(d.inputs, secrets), "outputs": redact(d.outputs, secrets)}


def _git_sha() -> str:
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _actor() -> str:
    if os.environ.get("GITHUB_ACTOR"):
        return os.environ["GITHUB_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def build_spec(catalog: Catalog, settings: EnvironmentSettings, *, size: str | None, scenarios: list[str],
               duration: int | None, run_id: str | None, trigger: str,
               selection_path: Path = SELECTION_FILE) -> tuple[RunSpec, float]:
    """The RunSpec for a plan or an up, and the budget it must stay under."""
    selection = load_selection(catalog, selection_path)
    run_id = run_id or new_run_id()
    if scenarios and size:
        raise InvalidInput("give either --size (a scheduled pick) or --scenario names, not both")
    if scenarios:
        names, size = pick_on_demand(catalog, selection, scenarios), None
    else:
        size = size or settings.simulation_size
        names = pick_scheduled(catalog, selection, run_id, size)
    spec = RunSpec(run_id=run_id, environment=settings.environment, trigger=trigger, scenarios=names,
                   duration_hours=resolve_duration(selection, duration), git_sha=_git_sha(), actor=_actor(),
                   size=size)
    return spec, selection.budget_usd


def platform_outputs_offline(environment: str, catalog: Catalog | None = None) -> dict:
    """What the platform stack exports, as placeholders: offline there is no platform to read."""
    group = f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/haymaker-{environment}-platform"
    return {"managedEnvironmentId": f"{group}/providers/Microsoft.App/managedEnvironments/haymaker-{environment}",
            "agentPullIdentityId": f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                                   f"haymaker-{environment}-agent-pull",
            "acrLoginServer": f"haymaker{environment}.azurecr.io",
            "reaperObjectId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"haymaker-{environment}-reaper")),
            "graphIdentities": offline_graph_identities(environment, MOCK_SUBSCRIPTION_ID, catalog=catalog)}


def _in_order(d: Declared) -> Declared:
    """A registration with its dependency lists sorted, so the same run always reads the same."""
    return dataclasses.replace(d, dependencies=sorted(d.dependencies),
                               property_dependencies={k: sorted(v) for k, v in sorted(d.property_dependencies.items())})


def make_plan(spec: RunSpec, settings: EnvironmentSettings, catalog: Catalog, budget_usd: float,
              policy_config: dict | None = None) -> Plan:
    """``policy_config``: the environment's policies/config.<env>.json unless given."""
    from stacks.run import run_program

    declared, outputs = evaluate(lambda: run_program(spec, settings, catalog), project="haymaker",
                                 stack=spec.stack_name,
                                 platform_outputs=platform_outputs_offline(spec.environment, catalog))
    # The mock runtime registers in no fixed order: sorted, the same run reads the same every time.
    declared = sorted((_in_order(d) for d in declared), key=lambda d: d.urn)
    seconds, chain = critical_path(declared)
    plan = Plan(spec=spec, settings=settings, catalog=catalog, budget_usd=budget_usd, declared=declared,
                outputs=outputs or {},
                costs=costs.run_cost([catalog[n] for n in spec.scenarios], spec.duration_hours,
                                     settings.cleanup_buffer_minutes),
                critical_path_seconds=seconds, critical_path=chain)
    if policy_config is None:
        policy_config = policycheck.load_policy_config(spec.environment)
    plan.violations = policycheck.check(declared, outputs or {}, spec.stack_tags(), policy_config, catalog)
    return plan


def plan_run(*, environment: str = "dev", size: str | None = None, scenarios: list[str] | None = None,
             duration: int | None = None, run_id: str | None = None, trigger: str = "local",
             selection_path: Path = SELECTION_FILE, catalog_dir: Path | None = None) -> Plan:
    catalog = load_catalog(catalog_dir) if catalog_dir else load_catalog()
    settings = load_environment(environment)
    spec, budget = build_spec(catalog, settings, size=size, scenarios=list(scenarios or []), duration=duration,
                              run_id=run_id, trigger=trigger, selection_path=selection_path)
    return make_plan(spec, settings, catalog, budget)
