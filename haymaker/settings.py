"""Per-environment settings, read from ``Pulumi.<env>.yaml`` (the platform stack's config).

Run stacks of an environment use the same values; ``haymaker plan --write-stack-config`` copies
them, with the RunSpec, into ``Pulumi.run-<run_id>.yaml``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from haymaker.errors import InvalidInput

REPO_ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "haymaker"


@dataclass(frozen=True)
class EnvironmentSettings:
    environment: str
    location: str
    allowed_locations: tuple[str, ...]
    agent_image: str
    allowed_registries: tuple[str, ...]
    simulation_size: str = "small"
    start_delay_minutes: int = 15
    cleanup_buffer_minutes: int = 30
    credential_grace_minutes: int = 60
    platform_stack: str | None = None  # default: <org>/haymaker/<environment>
    subscription_id: str | None = None  # when set, `haymaker up` refuses any other subscription
    # HayMaker's administrative unit (created once by a person): Graph scenarios create their groups in it, and
    # their identities, Groups Administrator of it, delete them (Group.Create cannot delete a group).
    groups_admin_unit_id: str | None = None

    def __post_init__(self) -> None:
        if self.location not in self.allowed_locations:
            raise InvalidInput(f"location {self.location!r} is not in allowedLocations "
                               f"{list(self.allowed_locations)}: add it or pick an allowed one")
        registry = self.agent_image.split("/", 1)[0]
        if registry not in self.allowed_registries:
            raise InvalidInput(f"agentImage registry {registry!r} is not in allowedRegistries")
        for key in ("start_delay_minutes", "cleanup_buffer_minutes", "credential_grace_minutes"):
            value = getattr(self, key)
            if not isinstance(value, int) or not 1 <= value <= 240:
                raise InvalidInput(f"{key} {value!r} must be a whole number of minutes from 1 to 240")

    def to_config(self) -> dict:
        """The ``haymaker:*`` config keys, as in Pulumi.<env>.yaml."""
        keys = {"location": self.location, "allowedLocations": list(self.allowed_locations),
                "agentImage": self.agent_image, "allowedRegistries": list(self.allowed_registries),
                "simulationSize": self.simulation_size, "startDelayMinutes": self.start_delay_minutes,
                "cleanupBufferMinutes": self.cleanup_buffer_minutes,
                "credentialGraceMinutes": self.credential_grace_minutes}
        if self.platform_stack:
            keys["platformStack"] = self.platform_stack
        if self.subscription_id:
            keys["subscriptionId"] = self.subscription_id
        if self.groups_admin_unit_id:
            keys["groupsAdministrativeUnitId"] = self.groups_admin_unit_id
        return {f"{NAMESPACE}:{k}": v for k, v in keys.items()}

    @classmethod
    def from_config(cls, environment: str, get) -> "EnvironmentSettings":
        """Build from a ``get(key) -> value | None`` over the ``haymaker:`` namespace."""
        def need(key):
            value = get(key)
            if value is None:
                raise InvalidInput(f"config {NAMESPACE}:{key} is missing for environment {environment!r}")
            return value

        optional = {k: get(c) for k, c in (("simulation_size", "simulationSize"),
                                           ("start_delay_minutes", "startDelayMinutes"),
                                           ("cleanup_buffer_minutes", "cleanupBufferMinutes"),
                                           ("credential_grace_minutes", "credentialGraceMinutes"),
                                           ("platform_stack", "platformStack"),
                                           ("subscription_id", "subscriptionId"),
                                           ("groups_admin_unit_id", "groupsAdministrativeUnitId"))}
        return cls(environment=environment, location=need("location"),
                   allowed_locations=tuple(need("allowedLocations")), agent_image=need("agentImage"),
                   allowed_registries=tuple(need("allowedRegistries")),
                   **{k: v for k, v in optional.items() if v is not None})

    def as_dict(self) -> dict:
        return asdict(self)


def load_environment(environment: str, root: Path = REPO_ROOT) -> EnvironmentSettings:
    path = root / f"Pulumi.{environment}.yaml"
    if not path.exists():
        known = sorted(p.stem.split(".", 1)[1] for p in root.glob("Pulumi.*.yaml") if not p.stem.startswith("Pulumi.run-"))
        raise InvalidInput(f"no {path.name}: environment {environment!r} has no config; known: {', '.join(known)}")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path.name} is not valid YAML: {e}") from None
    config = doc.get("config") or {}
    return EnvironmentSettings.from_config(environment, lambda k: config.get(f"{NAMESPACE}:{k}"))
