"""One stack transform that puts the five HayMaker tags on every taggable resource.

Azure resources (azure-native) get a tag map; Entra applications and service principals, whose
tags are plain strings, get ``key=value`` strings. Which resources are taggable is read from the
provider SDK itself (does the resource take a ``tags`` input?), not from a hand-kept list.
"""

from __future__ import annotations

import importlib
import inspect
from functools import lru_cache

import pulumi

MANAGED_TAG = "AzureHayMaker-managed"
RUN_LEVEL_SCENARIO = "run"


def haymaker_tags(run_id: str, scenario: str, environment: str, expires_at: str) -> dict[str, str]:
    return {
        MANAGED_TAG: "true",
        "haymaker-run": run_id,
        "haymaker-scenario": scenario,
        "haymaker-env": environment,
        "haymaker-expires": expires_at,
    }


_PACKAGES = {"azure-native": "pulumi_azure_native", "azuread": "pulumi_azuread"}


@lru_cache(maxsize=None)
def tags_kind(type_token: str) -> str | None:
    """'map' (azure-native), 'list' (azuread) or None when the resource has no tags input."""
    package, _, rest = type_token.partition(":")
    module, _, cls_name = rest.partition(":")
    if package not in _PACKAGES or not cls_name:
        return None
    module = module.split("/")[0] if package == "azuread" else module.replace("/", ".")
    path = _PACKAGES[package] if module in ("", "index") else f"{_PACKAGES[package]}.{module}"
    try:
        cls = getattr(importlib.import_module(path), cls_name)
        params = inspect.signature(cls._internal_init).parameters
    except (ImportError, AttributeError, ValueError):
        return None
    if "tags" not in params:
        return None
    return "map" if package == "azure-native" else "list"


def scenario_of(resource_name: str, scenarios: tuple[str, ...]) -> str:
    """Children are named ``<scenario>-<role>``: the longest scenario prefix wins."""
    for s in sorted(scenarios, key=len, reverse=True):
        if resource_name == s or resource_name.startswith(s + "-"):
            return s
    return RUN_LEVEL_SCENARIO


def make_tag_transform(run_id: str, environment: str, expires_at: str, scenarios: tuple[str, ...]):
    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom:
            return None
        kind = tags_kind(args.type_)
        if kind is None:
            return None
        ours = haymaker_tags(run_id, scenario_of(args.name, scenarios), environment, expires_at)
        props = dict(args.props)
        existing = props.get("tags")
        if kind == "map":
            props["tags"] = {**(existing if isinstance(existing, dict) else {}), **ours}
        else:
            keep = [t for t in (existing or []) if isinstance(t, str) and t.split("=", 1)[0] not in ours]
            props["tags"] = keep + [f"{k}={v}" for k, v in ours.items()]
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def register_tag_transform(run_id: str, environment: str, expires_at: str, scenarios: tuple[str, ...]) -> None:
    """Register the transform for every resource declared after this call in the stack."""
    pulumi.runtime.register_resource_transform(make_tag_transform(run_id, environment, expires_at, scenarios))
