"""Read a stack's inputs from its Pulumi config: a run stack's ``haymaker:runSpec`` and the environment
keys, or a platform stack's environment keys plus the platform-only ones."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import yaml

from haymaker.errors import InvalidInput
from haymaker.graphlease import check_pool_size
from haymaker.runspec import RunSpec
from haymaker.settings import NAMESPACE, REPO_ROOT, EnvironmentSettings, find_placeholders, load_environment

# The long-lived platform stacks, one per environment a release tag deploys to (haymaker/release.py).
PLATFORM_STACKS = ("dev", "staging", "prod")
GITHUB_REPOSITORY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
STORAGE_SKUS = ("Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS", "Standard_GZRS",
                "Standard_RAGZRS")
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 30, 730  # what a PerGB2018 workspace accepts


def run_inputs_from_config(stack: str) -> tuple[RunSpec, EnvironmentSettings]:
    config = pulumi.Config(NAMESPACE)
    spec = RunSpec.from_dict(config.require_object("runSpec"))
    if spec.stack_name != stack:
        raise pulumi.RunError(f"haymaker:runSpec is for stack {spec.stack_name!r}, not {stack!r}: "
                              "regenerate the stack config with `haymaker plan --write-stack-config`")
    if spec.variant != "try":  # a try's agent runs on the operator's machine: it needs no image
        refuse_placeholders(config, stack, ("agentImage",), f"Pulumi.{spec.environment}.yaml")
    settings = EnvironmentSettings.from_config(spec.environment, lambda k: _value(config, k))
    return spec, settings


def refuse_placeholders(config: pulumi.Config, stack: str, keys: tuple[str, ...], source: str | None = None) -> None:
    """Before anything is declared: a key that still holds the repository's placeholder stops the program.
    A run stack copies its keys from the environment's file (``source``), which is the one to edit."""
    values = {f"{NAMESPACE}:{k}": _value(config, k) for k in keys}
    found = find_placeholders({k: v for k, v in values.items() if v is not None}, source or f"Pulumi.{stack}.yaml", keys)
    if found:
        again = " (then `haymaker plan --write-stack-config` again)" if source else ""
        raise pulumi.RunError("; ".join(p.line() for p in found) + again)


@dataclass(frozen=True)
class PlatformSettings:
    """A platform stack's config: the environment's settings (shared with its run stacks) and the
    keys only the platform reads."""

    environment: EnvironmentSettings
    github_repository: str  # owner/repo whose GitHub Environments may deploy with the platform's identity
    log_retention_days: int = 30
    storage_sku: str = "Standard_LRS"
    # Identities per Graph scenario (components/graphidentity.py): how many live runs may name it at once.
    graph_identity_pool_size: int = 3
    # Service principal object ids of the identities a person created (haymaker/trust.py) that the platform
    # grants data roles to, by trust-table key; None until the bootstrap's identities exist.
    identity_object_ids: dict | None = None

    def __post_init__(self) -> None:
        check_pool_size(self.graph_identity_pool_size)
        name = self.environment.environment
        if not GITHUB_REPOSITORY_RE.match(str(self.github_repository)):
            raise InvalidInput(f"{NAMESPACE}:githubRepository {self.github_repository!r} for {name!r} is not "
                               "owner/repo: set it to the GitHub repository that deploys HayMaker")
        days = self.log_retention_days
        if not isinstance(days, int) or not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
            raise InvalidInput(f"{NAMESPACE}:logRetentionDays {days!r} for {name!r} must be a whole number "
                               f"of days from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}")
        if self.identity_object_ids is not None and not isinstance(self.identity_object_ids, dict):
            raise InvalidInput(f"{NAMESPACE}:identityObjectIds for {name!r} must map identity keys to object ids")
        if self.storage_sku not in STORAGE_SKUS:
            raise InvalidInput(f"{NAMESPACE}:storageSku {self.storage_sku!r} for {name!r} is not one of "
                               f"{', '.join(STORAGE_SKUS)}")

    @property
    def name(self) -> str:
        return self.environment.environment

    @classmethod
    def from_config(cls, environment: EnvironmentSettings, get) -> "PlatformSettings":
        """``get(key) -> value | None`` over the ``haymaker:`` namespace, for the platform-only keys."""
        repository = get("githubRepository")
        if repository is None:
            raise InvalidInput(f"config {NAMESPACE}:githubRepository is missing for environment "
                               f"{environment.environment!r}: set it to owner/repo")
        optional = {k: get(c) for k, c in (("log_retention_days", "logRetentionDays"), ("storage_sku", "storageSku"),
                                           ("graph_identity_pool_size", "graphIdentityPoolSize"),
                                           ("identity_object_ids", "identityObjectIds"))}
        return cls(environment=environment, github_repository=repository,
                   **{k: v for k, v in optional.items() if v is not None})


def platform_settings_from_config(stack: str) -> PlatformSettings:
    """What `pulumi up --stack <env>` hands the platform program."""
    config = pulumi.Config(NAMESPACE)
    # The platform needs only the agent image's registry, which exists before any image is pushed to it.
    refuse_placeholders(config, stack, ("githubRepository",))
    get = lambda k: _value(config, k)  # noqa: E731 - one getter for both halves
    return PlatformSettings.from_config(EnvironmentSettings.from_config(stack, get), get)


def load_platform_settings(environment: str, root: Path = REPO_ROOT) -> PlatformSettings:
    """The same settings read from ``Pulumi.<environment>.yaml`` (tests, tooling)."""
    base = load_environment(environment, root)  # refuses a missing or broken file, saying which
    config = (yaml.safe_load((root / f"Pulumi.{environment}.yaml").read_text()) or {}).get("config") or {}
    return PlatformSettings.from_config(base, lambda k: config.get(f"{NAMESPACE}:{k}"))


def _value(config: pulumi.Config, key: str):
    """Config values arrive as strings; lists and numbers are JSON-encoded."""
    raw = config.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw
