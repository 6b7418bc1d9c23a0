"""Checks of a scenario's day that JSON Schema cannot express: calendar, cadences, time limits, locations.

The limits are shared with the agent (haymaker/agent/runner.py), so what the validator accepts is
exactly what the agent enforces.
"""

from __future__ import annotations

from scenarios.calendar import company_problems
from scenarios.steps import split_step

# Minutes one attempt of a step may take: the default per phase, and the most a step may declare.
DEFAULT_TIMEOUT_MINUTES = {"deploy": 90, "operate": 15, "cleanup": 5}
MAX_TIMEOUT_MINUTES = {"deploy": 480, "operate": 60, "cleanup": 120}
# The environment's default buffer (haymaker:cleanupBufferMinutes): what a scenario gets unless it asks for more.
BASE_CLEANUP_BUFFER_MINUTES = 30
_LOCATION_FLAGS = ("--location", "-l")


def step_limit_minutes(phase: str, step: dict) -> int:
    return step.get("timeout_minutes") or DEFAULT_TIMEOUT_MINUTES[phase]


def cleanup_minutes_needed(doc: dict) -> int:
    """The buffer this scenario's cleanup needs: its declared buffer, and never less than its steps' limits."""
    total = sum(step_limit_minutes("cleanup", s) for s in doc["phases"]["cleanup"])
    return max(doc.get("cleanup_buffer_minutes") or 0, total)


def day_problems(d: dict) -> list[tuple[str, str]]:
    out = list(company_problems(d["company"]))
    for phase, steps in d["phases"].items():
        for i, step in enumerate(steps):
            where = f"phases.{phase}[{i}]"
            if phase != "operate":
                out.extend((f"{where}.{key}", f"{key} is for operate steps only: remove it from this {phase} step")
                           for key in ("cadence", "expect_failure") if key in step)
            limit = step.get("timeout_minutes")
            if limit is not None and limit > MAX_TIMEOUT_MINUTES[phase]:
                out.append((f"{where}.timeout_minutes", f"{limit} is over the {phase} limit of "
                                                        f"{MAX_TIMEOUT_MINUTES[phase]} minutes: lower it"))
    out.extend(_cleanup_fit(d))
    out.extend(_location_problems(d))
    return out


def _cleanup_fit(d: dict) -> list[tuple[str, str]]:
    buffer = d.get("cleanup_buffer_minutes") or BASE_CLEANUP_BUFFER_MINUTES
    limits = [step_limit_minutes("cleanup", s) for s in d["phases"]["cleanup"]]
    total = 0
    for i, (step, limit) in enumerate(zip(d["phases"]["cleanup"], limits)):
        total += limit
        if total > buffer:
            return [(f"phases.cleanup[{i}]", f"step {step['name']!r} does not fit the cleanup buffer: the cleanup "
                                             f"steps' limits reach {total} min by this step and the buffer is "
                                             f"{buffer} min; set cleanup_buffer_minutes: {sum(limits)} (all cleanup "
                                             "limits) or lower the steps' timeout_minutes")]
    return []


def literal_locations(run: str) -> list[str]:
    """Values of --location/-l, and the regionName= of a --locations list (az cosmosdb), that are not the
    run's own ${LOCATION}."""
    try:
        argv = split_step(run)
    except ValueError:
        return []  # check_step reports the quoting
    found, in_list = [], False
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if arg.startswith("-"):
            in_list = flag == "--locations"
        if flag in _LOCATION_FLAGS:
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if value != "${LOCATION}":
                found.append(value)
        elif in_list and flag.lower() == "regionname" and value != "${LOCATION}":
            found.append(value)
    return found


def _location_problems(d: dict) -> list[tuple[str, str]]:
    declared = d.get("locations") or []
    used: set[str] = set()
    out = []
    for phase, steps in d["phases"].items():
        for i, step in enumerate(steps):
            for value in literal_locations(step["run"]):
                used.add(value)
                if value not in declared:
                    out.append((f"phases.{phase}[{i}].run",
                                f"location {value} is not the run's location: use ${{LOCATION}}, or, when "
                                f"the service is offered only there, add {value} to the scenario's locations: and to "
                                "allowed-locations scenarioLocations in policies/config.<env>.json"))
    out.extend(("locations", f"{name!r} is named by no step's --location: remove it")
               for name in declared if name not in used)
    return out
