"""Load and validate the scenario catalog.

Every problem in every file is collected and reported as
``scenarios/<file>.yaml: <path in document>: <what is wrong>``; nothing raises a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema

from components.roles import BUILTIN_ROLES, GRAPH_APP_ROLES
from scenarios import CATALOG_DIR
from scenarios.audit import audit_problems
from scenarios.daychecks import cleanup_minutes_needed, day_problems
from scenarios.expect import step_problems
from scenarios.graphobjects import cleanup_problems
from scenarios.safeyaml import YamlProblem, load_yaml_file
from scenarios.steps import check_step

AREAS = ("ai-ml", "analytics", "compute", "containers", "databases", "hybrid", "identity",
         "networking", "security", "webapps")
PHASES = ("deploy", "operate", "cleanup")
DEFAULT_CPU = 0.5
DEFAULT_MEMORY = "1Gi"
NON_SCENARIO_FILES = {"selection.yaml"}


@dataclass(frozen=True)
class Step:
    name: str
    run: str
    cadence: str = "routine"
    expect_failure: bool = False
    timeout_minutes: int | None = None  # None: the phase's default (scenarios/daychecks.py)
    expect: tuple[str, ...] = ()  # ARM operations the step causes (scenarios/expect.py)
    plane: str | None = None  # "graph" or "data" when the step causes no ARM operation
    audit: tuple[str, ...] = ()  # Entra audit activities a plane: graph step causes (scenarios/audit.py)


@dataclass(frozen=True)
class Scenario:
    name: str
    area: str
    title: str
    description: str
    company: dict = field(hash=False, compare=False)
    azure_roles: tuple[str, ...] = ()
    graph_permissions: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    estimated_hourly_cost_usd: float = 0.0
    cpu: float = DEFAULT_CPU
    memory: str = DEFAULT_MEMORY
    phases: dict = field(default_factory=dict, hash=False, compare=False)
    locations: tuple[str, ...] = ()
    cleanup_minutes: int = 0  # the cleanup buffer it needs (declared, at least its cleanup steps' limits)

    @property
    def memory_gib(self) -> float:
        return float(self.memory.removesuffix("Gi"))

    @classmethod
    def from_document(cls, d: dict) -> "Scenario":
        agent = d.get("agent") or {}
        return cls(
            name=d["name"],
            area=d["area"],
            title=d["title"],
            description=d["description"],
            company=dict(d["company"]),
            azure_roles=tuple(d["azure_roles"]),
            graph_permissions=tuple(d.get("graph_permissions") or ()),
            services=tuple(d["services"]),
            estimated_hourly_cost_usd=float(d["estimated_hourly_cost_usd"]),
            cpu=float(agent.get("cpu", DEFAULT_CPU)),
            memory=agent.get("memory", DEFAULT_MEMORY),
            phases={p: tuple(Step(s["name"], s["run"], *_step_fields(s)) for s in d["phases"][p]) for p in PHASES},
            locations=tuple(d.get("locations") or ()),
            cleanup_minutes=cleanup_minutes_needed(d),
        )


def _step_fields(s: dict) -> tuple:
    """cadence, expect_failure, timeout_minutes, expect, plane, audit: a benign mistake runs rarely unless it
    says otherwise."""
    failure = bool(s.get("expect_failure"))
    return (s.get("cadence") or ("rare" if failure else "routine"), failure, s.get("timeout_minutes"),
            tuple(s.get("expect") or ()), s.get("plane"), tuple(s.get("audit") or ()))


@lru_cache(maxsize=None)
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((CATALOG_DIR / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def json_path(parts) -> str:
    """``phases.deploy[0].run`` style; ``(top level)`` for the document itself."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def display_path(path: Path) -> str:
    """``scenarios/<file>.yaml`` for catalog files; the path as given for files elsewhere."""
    path = Path(path)
    try:
        return f"scenarios/{path.resolve().relative_to(CATALOG_DIR).as_posix()}"
    except ValueError:
        return str(path)


def _semantic_problems(d: dict, stem: str) -> list[tuple[str, str]]:
    """Checks JSON Schema cannot express. Runs only on schema-valid documents."""
    out: list[tuple[str, str]] = []
    if d["name"] != stem:
        out.append(("name", f"{d['name']!r} differs from the file name: rename the file to {d['name']}.yaml "
                            f"or set name: {stem}"))
    if not d["name"].startswith(d["area"] + "-"):
        out.append(("area", f"{d['area']!r} does not match the name prefix: the name must start with {d['area']}-"))
    for i, role in enumerate(d["azure_roles"]):
        known = BUILTIN_ROLES.get(role)
        if known is None:
            out.append((f"azure_roles[{i}]", f"unknown role {role!r}: use a built-in role from components/roles.py"))
        elif known.privileged:
            out.append((f"azure_roles[{i}]", f"{role!r} can grant access; agents may not hold it: pick a narrower role"))
        elif not known.agent:
            out.append((f"azure_roles[{i}]", f"{role!r} is not an agent role (components/roles.py, agent=False): "
                                             "pick a narrower role"))
    for i, perm in enumerate(d.get("graph_permissions") or ()):
        if perm not in GRAPH_APP_ROLES:
            out.append((f"graph_permissions[{i}]",
                        f"unknown Graph permission {perm!r}: use one of {', '.join(sorted(GRAPH_APP_ROLES))}"))
    agent = d.get("agent") or {}
    cpu = float(agent.get("cpu", DEFAULT_CPU))
    memory = float(str(agent.get("memory", DEFAULT_MEMORY)).removesuffix("Gi"))
    if memory != cpu * 2:
        out.append(("agent", f"cpu {cpu} needs memory {cpu * 2:g}Gi (Container Apps consumption: 2 GiB per vCPU)"))
    for phase in PHASES:
        seen: set[str] = set()
        for i, step in enumerate(d["phases"][phase]):
            where = f"phases.{phase}[{i}]"
            if step["name"] in seen:
                out.append((f"{where}.name", f"duplicate step name {step['name']!r}: step names are unique per phase"))
            seen.add(step["name"])
            out.extend((f"{where}.run", p) for p in check_step(step["run"]))
            out.extend((f"{where}.{field}", p) for field, p in step_problems(step, d["services"]))
            out.extend((f"{where}.{field}", p) for field, p in audit_problems(step))
    out.extend(day_problems(d))
    out.extend(cleanup_problems(d))
    return out


def check_file(path: Path) -> tuple[Scenario | None, list[str]]:
    """Validate one scenario file: (scenario or None, every problem as a full message)."""
    shown = display_path(path)
    try:
        doc = load_yaml_file(Path(path))
    except YamlProblem as e:
        return None, [f"{shown}: {e.where}: {e.message}"]
    errors = sorted(_validator("schema.json").iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        return None, [f"{shown}: {json_path(e.absolute_path)}: {_schema_message(e)}" for e in errors]
    problems = _semantic_problems(doc, Path(path).stem)
    if problems:
        return None, [f"{shown}: {where}: {msg}" for where, msg in problems]
    return Scenario.from_document(doc), []


MOST_QUOTED = 60  # characters of a value an error quotes: a 175 KB value is named, not echoed


def excerpt(value) -> str:
    """A short quote of a value: its repr, cut with an ellipsis and its full size."""
    text = repr(value)
    if len(text) <= MOST_QUOTED:
        return text
    size = f"{len(value)} items" if isinstance(value, (list, dict)) else f"{len(str(value))} characters"
    return f"{text[:MOST_QUOTED]}… ({size})"


def _schema_message(e: jsonschema.ValidationError) -> str:
    limit = e.validator_value
    if e.validator == "maxLength":
        return f"{len(e.instance)} characters, over the limit of {limit}: shorten it ({excerpt(e.instance)})"
    if e.validator == "maxItems":
        return f"{len(e.instance)} items, over the limit of {limit}: keep at most {limit}"
    if e.validator == "minLength":
        return f"{excerpt(e.instance)} is shorter than the minimum of {limit} characters"
    if e.validator == "minItems":
        return f"{len(e.instance)} item(s), under the minimum of {limit}: add more"
    if e.validator in ("maximum", "minimum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{excerpt(e.instance)} is outside the limit ({e.validator} {limit})"
    if e.validator == "additionalProperties":
        return f"{e.message}: remove it or check its spelling"
    if e.validator == "pattern" and list(e.absolute_path) == ["name"]:
        return f"{excerpt(e.instance)} is not a valid name: use <area>-<two digits>-<kebab-case slug>"
    if e.validator == "pattern" and e.absolute_path and e.absolute_path[-1] == "name":
        return f"{excerpt(e.instance)} is not a valid step name: use kebab-case such as create-vnet"
    if len(e.message) > 2 * MOST_QUOTED:  # jsonschema quotes the whole value: quote a piece of it
        return e.message.replace(repr(e.instance), excerpt(e.instance))[: 4 * MOST_QUOTED]
    return e.message


def scenario_files(directory: Path = CATALOG_DIR) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.yaml") if p.name not in NON_SCENARIO_FILES)


def check_files(paths: list[Path]) -> tuple[dict[str, Scenario], list[str]]:
    """Validate many files; report all problems, including names used by two files."""
    scenarios: dict[str, Scenario] = {}
    where: dict[str, Path] = {}
    errors: list[str] = []
    for path in paths:
        scenario, problems = check_file(path)
        errors.extend(problems)
        if scenario is None:
            continue
        if scenario.name in scenarios:
            errors.append(f"{display_path(path)}: name: {scenario.name!r} is also used by "
                          f"{display_path(where[scenario.name])}: scenario names are unique")
            continue
        scenarios[scenario.name] = scenario
        where[scenario.name] = path
    return scenarios, errors


@dataclass(frozen=True)
class Catalog:
    scenarios: dict[str, Scenario]

    def __getitem__(self, name: str) -> Scenario:
        return self.scenarios[name]

    def __contains__(self, name: str) -> bool:
        return name in self.scenarios

    def names(self) -> list[str]:
        return sorted(self.scenarios)

    def by_area(self, area: str | None = None) -> list[Scenario]:
        return [s for n, s in sorted(self.scenarios.items()) if area is None or s.area == area]


def load_catalog(directory: Path = CATALOG_DIR) -> Catalog:
    """The whole catalog, or ``CatalogError`` listing every problem of every file.

    Cached per process while no file changes (the plan and the cost policy both read it)."""
    paths = scenario_files(directory)
    stamp = tuple((p.name, st.st_mtime_ns, st.st_size) for p in paths for st in (p.stat(),))
    return _load(Path(directory), stamp)


@lru_cache(maxsize=4)
def _load(directory: Path, stamp: tuple) -> Catalog:
    from haymaker.errors import CatalogError

    if not stamp:
        raise CatalogError([f"{display_path(directory)}: (directory): no scenario files found"])
    scenarios, errors = check_files([directory / name for name, _, _ in stamp])
    if errors:
        raise CatalogError(errors)
    return Catalog(scenarios)
