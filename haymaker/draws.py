"""Every run the repository allows, checked at once: what a pull request can break.

A scheduled or dispatched run picks by size (pins, then weighted picks from the pool) or names 1-5
scenarios, in any environment. Rather than plan one random draw, this checks what every draw needs:
the selection loads; each size can be filled and fits each environment's run-size policy; the most
expensive draw of each size, and of an on-demand run, is within the budget in each environment; and each
scenario passes each environment's mandatory policies (one offline plan of all scenarios per environment,
the same validators `plan` and the engine run). `scenarios validate` and `haymaker pr` report it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from haymaker import cost as costs
from haymaker.errors import CatalogError, HayMakerError
from haymaker.runspec import ENVIRONMENTS
from haymaker.selection import SIZES, Selection, load_selection, pick_scheduled
from haymaker.settings import REPO_ROOT, EnvironmentSettings, load_environment
from scenarios.catalog import Catalog, load_catalog

# Policies that judge a whole run, not a scenario: checked here per size and per draw instead.
RUN_POLICIES = ("run-scenario-limits", "run-cost-warning")
EVERY = "every environment"


@dataclass(frozen=True)
class Problem:
    """Something that would make a run fail: where (scenario or file), in which environment, and the fix."""

    subject: str
    environment: str  # an environment, several (dev, prod), or EVERY
    message: str

    def line(self) -> str:
        where = self.subject if self.environment == EVERY else f"{self.subject} in {self.environment}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {"subject": self.subject, "environment": self.environment, "message": self.message}


@dataclass
class Tree:
    """What a pull request can change, as read from one checkout: the catalog, the selection and each
    environment's settings and policy config. What does not load is a problem, not an exception."""

    root: Path
    catalog: Catalog | None = None
    selection: Selection | None = None
    settings: dict[str, EnvironmentSettings] = field(default_factory=dict)
    policy_configs: dict[str, dict] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def environments(self) -> list[str]:
        return sorted(self.settings)


def read_tree(root: Path = REPO_ROOT, catalog: Catalog | None = None, selection: Path | None = None,
              with_selection: bool = True) -> Tree:
    """Load everything a run reads from ``root``. ``catalog``: one already loaded (a lenient base catalog,
    or files named on the command line, which have no selection: ``with_selection=False``);
    ``selection``: another selection file than the root's scenarios/selection.yaml."""
    from haymaker.policycheck import load_policy_config

    tree = Tree(root=Path(root))
    try:
        tree.catalog = catalog or load_catalog(tree.root / "scenarios")
    except CatalogError as e:
        for line in e.errors:  # "scenarios/<file>.yaml: <where>: <what>"
            file, _, what = line.partition(": ")
            tree.problems.append(Problem(file, EVERY, what))
        return tree
    try:
        if with_selection:
            tree.selection = load_selection(tree.catalog, selection or tree.root / "scenarios" / "selection.yaml",
                                            shown=str(selection or "scenarios/selection.yaml"))
    except CatalogError as e:
        shown = str(selection or "scenarios/selection.yaml")
        tree.problems += [Problem(shown, EVERY, line.removeprefix(f"{shown}: ")) for line in e.errors]
    for env in ENVIRONMENTS:
        try:
            tree.settings[env] = load_environment(env, tree.root)
            tree.policy_configs[env] = load_policy_config(env, tree.root / "policies" / f"config.{env}.json")
        except HayMakerError as e:
            tree.settings.pop(env, None)
            tree.problems.append(Problem(f"Pulumi.{env}.yaml", env, str(e)))
    return tree


# --- the pool and its most expensive draws ---------------------------------------------------------

def pool(catalog: Catalog, selection: Selection) -> dict[str, float | None]:
    """{scenario: weight} of what scheduled runs can draw; pins have weight None (always drawn)."""
    names = [n for n in (selection.include or catalog.names()) if n not in set(selection.exclude)]
    drawn: dict[str, float | None] = {n: None for n in selection.pins if n in catalog}
    for n in sorted(set(names) - set(drawn)):
        weight = float(selection.weights.get(catalog[n].area, 1.0))
        if weight > 0:
            drawn[n] = weight
    return drawn


@dataclass(frozen=True)
class Draw:
    kind: str  # a size, or "on demand"
    environment: str
    scenarios: tuple[str, ...]  # most expensive first
    cost_usd: float

    def as_dict(self) -> dict:
        return {"kind": self.kind, "environment": self.environment, "scenarios": list(self.scenarios),
                "cost_usd": round(self.cost_usd, 2)}


def scenario_costs(catalog: Catalog, names, duration_hours: int, settings: EnvironmentSettings) -> dict[str, float]:
    return {n: costs.scenario_cost(catalog[n], duration_hours, settings.cleanup_buffer_minutes).total_usd
            for n in names}


def worst_draws(catalog: Catalog, selection: Selection, env: str, settings: EnvironmentSettings) -> list[Draw]:
    """The most expensive draw of each size (pins plus the dearest of the pool) and of an on-demand run
    (the dearest scenarios of the catalog), at the selection's default duration."""
    price = scenario_costs(catalog, catalog.names(), selection.duration_hours, settings)
    dearest = sorted(price, key=lambda n: (-price[n], n))
    drawn = pool(catalog, selection)
    pins = [n for n, w in drawn.items() if w is None]
    others = [n for n in dearest if drawn.get(n, 0) and n not in pins]
    draws = []
    for size in SIZES:
        names = pins + others[: max(selection.sizes[size] - len(pins), 0)]
        names.sort(key=lambda n: (-price[n], n))
        draws.append(Draw(size, env, tuple(names), sum(price[n] for n in names)))
    names = dearest[: selection.max_on_demand]
    draws.append(Draw("on demand", env, tuple(names), sum(price[n] for n in names)))
    return draws


# --- the checks ------------------------------------------------------------------------------------

def draw_problems(tree: Tree) -> list[Problem]:
    """Sizes that cannot be filled or break the run-size policy, and draws over the budget."""
    from haymaker.policycheck import effective
    from policies.rules import POLICIES

    catalog, selection = tree.catalog, tree.selection
    if catalog is None or selection is None:
        return []
    found = []
    for size in SIZES:
        try:
            pick_scheduled(catalog, selection, "20000101t0000z-0000", size)
        except HayMakerError as e:
            found.append(Problem(f"sizes.{size}", EVERY, str(e)))
    limits = next(p for p in POLICIES if p.name == "run-scenario-limits")
    for env in tree.environments:
        level, config = effective(limits, tree.policy_configs[env])
        for size in SIZES:
            count = selection.sizes[size]
            if level.value == "mandatory" and count > config["maxScenarios"]:
                found.append(Problem(f"sizes.{size}", env, (
                    f"a {size} run draws {count} scenarios but run-scenario-limits in policies/config.{env}.json "
                    f"allows {config['maxScenarios']}: lower sizes.{size} in scenarios/selection.yaml to "
                    f"{config['maxScenarios']} or raise maxScenarios")))
        for draw in worst_draws(catalog, selection, env, tree.settings[env]):
            if draw.cost_usd > selection.budget_usd:
                found.append(Problem(draw.scenarios[0], env, over_budget(draw, selection)))
    return found


def up_to_cent(usd: float) -> float:
    """The least whole-cent budget the gate (cost > budget refuses) admits the cost under."""
    cents = math.ceil(usd * 100)
    while cents / 100 < usd:  # usd * 100 can round below the true product
        cents += 1
    return cents / 100


def over_budget(draw: Draw, selection: Selection) -> str:
    what = f"an on-demand run of {len(draw.scenarios)}" if draw.kind == "on demand" else f"a {draw.kind} run"
    dearest = ", ".join(draw.scenarios[:3]) + (", …" if len(draw.scenarios) > 3 else "")
    needed = up_to_cent(draw.cost_usd)
    other = ("lower on_demand.max_scenarios" if draw.kind == "on demand"
             else f"exclude or lower the weight of {draw.scenarios[0]}, or lower sizes.{draw.kind}")
    return (f"{what} can cost ${draw.cost_usd:.2f} ({dearest}) at {selection.duration_hours} h, over budget_usd "
            f"{selection.budget_usd:g} in scenarios/selection.yaml: raise budget_usd to at least {needed:.2f}, "
            f"or {other}")


def verdicts(tree: Tree, names: list[str] | None = None) -> dict[str, dict[str, list]]:
    """{environment: {scenario: its mandatory violations}} for every scenario (or ``names``) in every
    environment; a scenario absent from an environment's map could not be planned there (see problems)."""
    catalog = tree.catalog
    names = sorted(names if names is not None else catalog.names())
    duration = tree.selection.duration_hours if tree.selection else 8
    return {env: _verdicts_in(tree, env, names, duration) for env in tree.environments} if names else {}


def _verdicts_in(tree: Tree, env: str, names: list[str], duration: int) -> dict[str, list]:
    from haymaker.plan import make_plan
    from haymaker.runspec import RunSpec, new_run_id

    config = {**tree.policy_configs[env], **{p: {"enforcementLevel": "disabled"} for p in RUN_POLICIES}}

    # The image is the environment's, not a scenario's: judged once by image_problems, not per scenario.
    settings = as_pinned(tree.settings[env])

    def plan(scenarios):
        spec = RunSpec(run_id=new_run_id(), environment=env, trigger="schedule", scenarios=tuple(scenarios),
                       duration_hours=duration)
        return make_plan(spec, settings, tree.catalog, budget_usd=float("inf"), policy_config=config)

    try:
        plans = [plan(names)]  # one plan of every scenario: the validators are per resource
    except HayMakerError:
        plans = []  # one scenario cannot be planned at all: find it, and judge the others
        for name in names:
            try:
                plans.append(plan([name]))
            except HayMakerError as e:
                tree.problems.append(Problem(name, env, f"cannot be planned: {e}"))
    found: dict[str, list] = {}
    for p in plans:
        owner = {d.name: s for s in p.spec.scenarios for d in p.resources_of(s)}
        for s in p.spec.scenarios:
            found[s] = []
        for v in p.mandatory_violations:
            found.setdefault(owner.get(v.resource, "(run)"), []).append(v)
    return found


IMAGE = "agent image"
_STAND_IN_DIGEST = "@sha256:" + "0f" * 32


def as_pinned(settings: EnvironmentSettings) -> EnvironmentSettings:
    """The settings with the agent image pinned by a stand-in digest when it is a tag."""
    import dataclasses

    if "@sha256:" in settings.agent_image:
        return settings
    return dataclasses.replace(settings, agent_image=settings.agent_image.rsplit(":", 1)[0] + _STAND_IN_DIGEST
                               if ":" in settings.agent_image.rsplit("/", 1)[-1] else
                               settings.agent_image + _STAND_IN_DIGEST)


def image_problems(tree: Tree) -> list[Problem]:
    """Environments whose policy wants images pinned by digest while haymaker:agentImage is a tag: every
    run there is refused, whatever it draws."""
    out = []
    for env in tree.environments:
        image = tree.settings[env].agent_image
        if (tree.policy_configs.get(env, {}).get("agent-job-limits", {}).get("requireDigest")
                and "@sha256:" not in image):
            out.append(Problem(IMAGE, env, f"haymaker:agentImage {image!r} in Pulumi.{env}.yaml is a tag and "
                                           f"{env} runs only images pinned by digest: set it to "
                                           "<registry>/haymaker-agent@sha256:<digest> (agent-image.yml prints it)"))
    return out


def policy_problems(verdicts_by_env: dict[str, dict[str, list]]) -> list[Problem]:
    return [Problem(scenario, env, f"{v.policy}: {v.message}")
            for env, by_scenario in verdicts_by_env.items()
            for scenario, violations in sorted(by_scenario.items()) for v in violations]


def check(tree: Tree) -> tuple[dict, list[Problem]]:
    """(verdicts, every problem) of a tree: what loads, every draw, every scenario in every environment;
    the same problem in several environments is one problem naming them all."""
    judged = verdicts(tree) if tree.catalog is not None else {}
    envs: dict[tuple[str, str], list[str]] = {}
    for p in tree.problems + draw_problems(tree) + policy_problems(judged):
        envs.setdefault((p.subject, p.message), []).append(p.environment)
    return judged, [Problem(subject, ", ".join(where), message) for (subject, message), where in envs.items()]
