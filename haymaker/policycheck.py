"""Run the policy pack's validators offline over what a program declared under mocks.

The engine builds ResourceValidationArgs / StackValidationArgs from the registrations it receives;
this module builds the same objects from the mock registrations and calls the same functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from pulumi_policy.policy import _NotApplicableError

from haymaker.errors import InvalidInput
from haymaker.mockrun import Declared, unwrap
from haymaker.settings import REPO_ROOT
from policies.rules import CATALOG, POLICIES

PACK_DEFAULT = EnforcementLevel.MANDATORY


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    message: str
    enforcement: str

    def line(self) -> str:
        return f"{self.policy}: {self.resource}: {self.message}"

    def as_dict(self) -> dict:
        return {"policy": self.policy, "resource": self.resource, "message": self.message,
                "enforcement": self.enforcement}


def config_path(environment: str) -> Path:
    return REPO_ROOT / "policies" / f"config.{environment}.json"


def load_policy_config(environment: str, path: Path | None = None) -> dict:
    """The --policy-config file of an environment ({} when the environment has none)."""
    path = path or config_path(environment)
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise InvalidInput(f"{path.name} is not valid JSON: {e}") from None
    names = {p.name for p in POLICIES}
    unknown = sorted(set(doc) - names - {"all"})
    if unknown:
        raise InvalidInput(f"{path.name} configures unknown policies {', '.join(unknown)}")
    return doc


def effective(policy, overrides: dict) -> tuple[EnforcementLevel, dict]:
    """Enforcement level and config of a policy: schema defaults, then the config file."""
    raw = overrides.get(policy.name, overrides.get("all", {}))
    if isinstance(raw, str):
        raw = {"enforcementLevel": raw}
    level = policy.enforcement_level or PACK_DEFAULT
    if "enforcementLevel" in raw:
        level = EnforcementLevel(raw["enforcementLevel"])
    config = {k: v["default"] for k, v in (policy.config_schema.properties if policy.config_schema else {}).items()
              if "default" in v}
    config.update({k: v for k, v in raw.items() if k != "enforcementLevel"})
    return level, config


def _options(parent: str) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
                                 parent=parent or None)


def check(declared: list[Declared], stack_outputs: dict, stack_tags: dict, overrides: dict,
          catalog=None) -> list[Violation]:
    """Every violation; ``catalog``: the one the program was planned with (default: the repository's)."""
    token = CATALOG.set(catalog)
    try:
        return _check(declared, stack_outputs, stack_tags, overrides)
    finally:
        CATALOG.reset(token)


def _check(declared: list[Declared], stack_outputs: dict, stack_tags: dict, overrides: dict) -> list[Violation]:
    violations: list[Violation] = []
    by_urn = {d.urn: d for d in declared}
    names = {d.urn: d.name for d in declared}
    for policy in POLICIES:
        level, config = effective(policy, overrides)
        if level == EnforcementLevel.DISABLED:
            continue

        def report(message, urn=None, _policy=policy, _level=level, _resource=None):
            where = names.get(urn, "(stack)") if urn else (_resource or "(stack)")
            violations.append(Violation(_policy.name, where, message, _level.value))

        if isinstance(policy, ResourceValidationPolicy):
            for d in declared:
                if not d.custom:
                    continue
                args = ResourceValidationArgs(d.type, unwrap(d.inputs), d.urn, d.name, _options(d.parent), None,
                                              config, stack_tags)
                try:
                    policy.validate(args, lambda m, urn=None, d=d: report(m, urn or d.urn))
                except _NotApplicableError:  # `args.not_applicable()`: the engine skips, so do we
                    continue
        else:
            resources = _policy_resources(declared, by_urn, stack_outputs)
            try:
                policy.validate(StackValidationArgs(resources, config, stack_tags), report)
            except _NotApplicableError:  # `args.not_applicable()`: the engine skips, so do we
                continue
    return violations


def _policy_resources(declared, by_urn, stack_outputs) -> list[PolicyResource]:
    """Stack policies see every resource with its outputs, as after an update, plus the stack."""
    made: dict[str, PolicyResource] = {}
    for d in declared:
        made[d.urn] = PolicyResource(d.type, unwrap(d.outputs if d.custom else {}), d.urn, d.name,
                                     _options(d.parent), None, None, [], {})
    for d in declared:
        r = made[d.urn]
        r.parent = made.get(d.parent)
        r.dependencies = [made[u] for u in d.dependencies if u in made]
        r.property_dependencies = {k: [made[u] for u in v if u in made] for k, v in d.property_dependencies.items()}
    stack_name = declared[0].urn.split("::", 1)[0].removeprefix("urn:pulumi:") if declared else "stack"
    stack = PolicyResource("pulumi:pulumi:Stack", unwrap(stack_outputs),
                           f"urn:pulumi:{stack_name}::haymaker::pulumi:pulumi:Stack::haymaker-{stack_name}",
                           f"haymaker-{stack_name}", _options(""), None, None, [], {})
    return list(made.values()) + [stack]


def recheck_plan(doc: dict, config_file: Path | None = None) -> list[Violation]:
    """Re-run the validators over a saved plan (secrets in it are redacted)."""
    try:
        declared = [Declared(urn=r["urn"], id=r["id"], type=r["type"], name=r["name"], custom=r["custom"],
                             parent=r["parent"], dependencies=r["dependencies"],
                             property_dependencies=r["property_dependencies"], inputs=r["inputs"],
                             outputs=r["outputs"]) for r in doc["declared"]]
        environment = doc["run"]["environment"]
        outputs, tags = doc["outputs"], doc["stack_tags"]
    except (KeyError, TypeError) as e:
        raise InvalidInput(f"not a HayMaker plan (missing {e}): write one with `haymaker plan --json`") from None
    return check(declared, outputs, tags, load_policy_config(environment, config_file))
