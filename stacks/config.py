"""Read a run stack's inputs from its Pulumi config (``haymaker:runSpec`` and the environment keys)."""

from __future__ import annotations

import json

import pulumi

from haymaker.runspec import RunSpec
from haymaker.settings import NAMESPACE, EnvironmentSettings


def run_inputs_from_config(stack: str) -> tuple[RunSpec, EnvironmentSettings]:
    config = pulumi.Config(NAMESPACE)
    spec = RunSpec.from_dict(config.require_object("runSpec"))
    if spec.stack_name != stack:
        raise pulumi.RunError(f"haymaker:runSpec is for stack {spec.stack_name!r}, not {stack!r}: "
                              "regenerate the stack config with `haymaker plan --write-stack-config`")
    settings = EnvironmentSettings.from_config(spec.environment, lambda k: _value(config, k))
    return spec, settings


def _value(config: pulumi.Config, key: str):
    """Config values arrive as strings; lists and numbers are JSON-encoded."""
    raw = config.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw
