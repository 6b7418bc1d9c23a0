"""Turn catalog steps into the argument lists the agent runs, refusing anything outside its group.

Placeholders are filled inside arguments that are already split, so a value can never add or
split an argument. The text that goes to the logs shows secrets as ``[secret]``.
"""

from __future__ import annotations

import secrets
import shlex
import string
from dataclasses import dataclass, field
from typing import Mapping

from haymaker import naming
from haymaker.errors import InvalidInput
from scenarios.catalog import Scenario, Step
from scenarios.daychecks import DEFAULT_TIMEOUT_MINUTES
from scenarios.steps import PLACEHOLDER_RE, check_argv, check_step, split_step

SECRET = "[secret]"
SECRET_PLACEHOLDERS = frozenset({"PASSWORD"})
# No quotes, '$', '@', '=' or backslash: the value goes into az arguments and KEY=VALUE settings.
_PASSWORD_SPECIALS = "!-_.+"


class StepRefused(InvalidInput):
    """A step names something outside the scenario's resource group, or cannot be rendered."""


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    shown: str  # for logs and plans: secrets replaced by [secret]


@dataclass(frozen=True)
class Day:
    """Every step of the scenario, rendered and checked before the agent touches Azure."""

    deploy: tuple[tuple[str, Command], ...]
    operate: dict[str, Command]
    operate_steps: tuple[Step, ...]
    cleanup: tuple[tuple[str, Command], ...]
    limits: dict[tuple[str, str], float] = field(default_factory=dict)  # (phase, step) -> seconds per attempt

    def limit(self, phase: str, name: str) -> float:
        return self.limits.get((phase, name), DEFAULT_TIMEOUT_MINUTES[phase] * 60.0)


def prepare_day(scenario: Scenario, values: Mapping[str, str]) -> Day:
    """Render every step up front: one bad step refuses the whole day before anything is created."""
    rendered, problems = {}, []
    for phase, steps in scenario.phases.items():
        rendered[phase] = []
        for step in steps:
            try:
                rendered[phase].append((step.name, render_step(step.run, values)))
            except StepRefused as e:
                problems.append(f"{scenario.name}: phases.{phase}.{step.name}: {e}")
    if problems:
        raise StepRefused("refused to run these steps: " + "; ".join(problems))
    limits = {(phase, s.name): s.timeout_minutes * 60.0 for phase, steps in scenario.phases.items()
              for s in steps if s.timeout_minutes}
    return Day(deploy=tuple(rendered["deploy"]), operate=dict(rendered["operate"]),
               operate_steps=scenario.phases["operate"], cleanup=tuple(rendered["cleanup"]), limits=limits)


def placeholder_values(*, run_id: str, scenario: str, resource_group: str, location: str, subscription_id: str,
                       tenant_id: str, client_id: str, agent_object_id: str, password: str,
                       admin_unit_id: str = "00000000-0000-0000-0000-000000000000") -> dict[str, str]:
    values = {"RESOURCE_GROUP": resource_group, "LOCATION": location, "RUN_ID": run_id,
              "UNIQUE": naming.unique_suffix(run_id, scenario), "SCENARIO": scenario,
              "SUBSCRIPTION_ID": subscription_id, "TENANT_ID": tenant_id, "CLIENT_ID": client_id,
              "AGENT_OBJECT_ID": agent_object_id, "PASSWORD": password, "ADMIN_UNIT_ID": admin_unit_id}
    return values


def new_password(length: int = 24) -> str:
    """A password Azure accepts for VMs and databases: upper, lower, digit and special, 24 chars.

    It starts with a letter so az never mistakes it for a flag or a file (``@``)."""
    sets = (string.ascii_uppercase, string.ascii_lowercase, string.digits, _PASSWORD_SPECIALS)
    everything = "".join(sets)
    rest = [secrets.choice(s) for s in sets] + [secrets.choice(everything) for _ in range(length - 5)]
    secrets.SystemRandom().shuffle(rest)
    return secrets.choice(string.ascii_letters) + "".join(rest)


def render_step(run: str, values: Mapping[str, str]) -> Command:
    """Check the step as written, fill its placeholders, and check the result against the real group."""
    problems = check_step(run)
    if problems:
        raise StepRefused("; ".join(problems))
    argv = split_step(run)
    rendered = [_fill(arg, values) for arg in argv]
    problems = check_argv(rendered, resource_group=values["RESOURCE_GROUP"],
                          subscription=values["SUBSCRIPTION_ID"], run_id=values["RUN_ID"],
                          agent_object_id=values["AGENT_OBJECT_ID"])
    if problems:
        raise StepRefused("; ".join(problems))
    shown_values = {**values, **{name: SECRET for name in SECRET_PLACEHOLDERS}}
    return Command(tuple(rendered), shlex.join(_fill(arg, shown_values) for arg in argv))


def plain_command(*argv: str) -> Command:
    """A command the agent itself runs (login, account set): nothing to fill, nothing secret in it."""
    return Command(tuple(argv), shlex.join(argv))


def _fill(arg: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], arg)
