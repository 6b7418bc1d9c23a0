"""Per-environment settings, read from ``Pulumi.<env>.yaml`` (the platform stack's config).

Run stacks of an environment use the same values; ``haymaker plan --write-stack-config`` copies
them, with the RunSpec, into ``Pulumi.run-<run_id>.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from haymaker.errors import InvalidInput
from haymaker.runspec import check_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "haymaker"

# Pulumi.<env>.yaml ships with placeholders a deployment must replace (README: "Keys you must edit").
PLACEHOLDER_OWNERS = ("your-org",)
# agent-image.yml tags each image with its release tag (vX.Y.Z-dev, vX.Y.Z-rc.N, vX.Y.Z) and prints its digest.
PUBLISHED_TAG = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-dev|-rc\.(0|[1-9]\d*))?$")
DIGEST = re.compile(r"@sha256:([0-9a-f]{64})$")
IMAGE_FIX = ("set it to the digest the agent-image workflow printed (<registry>/haymaker-agent@sha256:…) "
             "or to a release tag it published (:vX.Y.Z)")


def unpublished_image(image: str) -> str | None:
    """Why no workflow publishes ``image`` (None when one does, or when it is pinned by digest)."""
    digest = DIGEST.search(image)
    if digest:
        return "an all-zero digest" if set(digest.group(1)) == {"0"} else None
    name = image.rsplit("/", 1)[-1]
    tag = name.split(":", 1)[1] if ":" in name else ""
    if PUBLISHED_TAG.match(tag):
        return None
    return f"tag {tag!r}, which no workflow publishes" if tag else "no tag or digest: latest, which no workflow publishes"


def placeholder_repository(repository: str) -> str | None:
    owner = str(repository).split("/", 1)[0]
    return f"the example owner {owner!r}" if owner.lower() in PLACEHOLDER_OWNERS else None


@dataclass(frozen=True)
class Placeholder:
    """A config key that still holds what the repository ships with."""

    key: str
    value: str
    file: str
    why: str
    fix: str

    def line(self) -> str:
        return f"{self.key} in {self.file} is {self.value!r}, with {self.why}: {self.fix}"


def find_placeholders(config: dict, file: str, keys: tuple[str, ...] = ("agentImage", "githubRepository")) \
        -> list[Placeholder]:
    """The keys of one stack config (``haymaker:``-prefixed mapping) that still hold placeholders."""
    checks = {"agentImage": (unpublished_image, IMAGE_FIX),
              "githubRepository": (placeholder_repository, "set it to the owner/repo of your GitHub repository")}
    found = []
    for key in keys:
        value = config.get(f"{NAMESPACE}:{key}")
        why = checks[key][0](str(value)) if value is not None else None
        if why:
            found.append(Placeholder(f"{NAMESPACE}:{key}", str(value), file, why, checks[key][1]))
    return found


def placeholders(environment: str, root: Path | None = None,
                 keys: tuple[str, ...] = ("agentImage", "githubRepository")) -> list[Placeholder]:
    """What ``Pulumi.<environment>.yaml`` still holds of the shipped placeholders (``root``: the repository,
    read when called, so that tests can point it at a copy)."""
    path = _config_path(environment, root or REPO_ROOT)
    return find_placeholders(_read_config(path), path.name, keys)


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


def _config_path(environment: str, root: Path) -> Path:
    check_environment(environment)  # a name, never a path
    path = root / f"Pulumi.{environment}.yaml"
    if not path.exists():
        raise InvalidInput(f"no {path.name}: environment {environment!r} has no config in {root}")
    return path


def _read_config(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path.name} is not valid YAML: {e}") from None
    return doc.get("config") or {}


def load_environment(environment: str, root: Path | None = None) -> EnvironmentSettings:
    config = _read_config(_config_path(environment, root or REPO_ROOT))
    return EnvironmentSettings.from_config(environment, lambda k: config.get(f"{NAMESPACE}:{k}"))
