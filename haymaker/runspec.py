"""RunSpec: everything that defines one run, validated before any Pulumi code runs."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from haymaker.errors import InvalidInput
from haymaker.graphlease import LEASE_TAG, format_leases

TRIGGERS = ("schedule", "release", "dispatch", "local")
# Which program declares the stack: a run (agents as jobs in the platform), or a try (`haymaker try`: the
# scenario's group only, the agent on the operator's machine as the operator).
VARIANTS = ("run", "try")
ENVIRONMENTS = ("dev", "staging", "prod")
MIN_DURATION_HOURS = 1
MAX_DURATION_HOURS = 10
DEFAULT_DURATION_HOURS = 8

# 20261121t0600z-7f3a: sortable (UTC minute first), short, lowercase so it can go into any Azure name.
RUN_ID_PATTERN = re.compile(r"^(\d{8})t(\d{4})z-([0-9a-f]{4})$")


def new_run_id(now: datetime | None = None, suffix: str | None = None) -> str:
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{now:%Y%m%d}t{now:%H%M}z-{suffix or secrets.token_hex(2)}"


def check_run_id(run_id: str) -> datetime:
    """Validate a run id and return the UTC minute it encodes."""
    m = RUN_ID_PATTERN.match(run_id)
    if not m:
        raise InvalidInput(
            f"run id {run_id!r} is not valid: use the form 20261121t0600z-7f3a "
            "(UTC date, 't', hour and minute, 'z-', four lowercase hex digits)"
        )
    try:
        return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
    except ValueError:
        raise InvalidInput(f"run id {run_id!r} encodes a date that does not exist") from None


# No HayMaker run started before this; none may be planned further ahead than MAX_AHEAD.
EARLIEST_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
MAX_AHEAD = timedelta(days=7)


def check_run_id_time(run_id: str, now: datetime | None = None) -> datetime:
    """A run id given on the command line: valid, and neither before any run nor far in the future."""
    started = check_run_id(run_id)
    now = now or datetime.now(timezone.utc)
    if started < EARLIEST_START:
        raise InvalidInput(f"run id {run_id!r} starts {started:%Y-%m-%d}, before any HayMaker run "
                           f"({EARLIEST_START:%Y-%m-%d}): leave --run-id out for a new one")
    if started > now + MAX_AHEAD:
        raise InvalidInput(f"run id {run_id!r} starts {started:%Y-%m-%d %H:%M}Z, more than {MAX_AHEAD.days} days "
                           "from now: leave --run-id out for a new one")
    return started


def check_environment(value: str, source: str = "") -> str:
    """An environment is one of a fixed few names, never a path (``-e ../../etc/passwd``)."""
    if value not in ENVIRONMENTS:
        origin = f" (from {source})" if source and source not in ("flag", "default") else ""
        raise InvalidInput(f"environment {value!r}{origin} is unknown: use one of {', '.join(ENVIRONMENTS)}")
    return value


def check_duration(hours: int) -> int:
    if isinstance(hours, bool) or not isinstance(hours, int) or not (
        MIN_DURATION_HOURS <= hours <= MAX_DURATION_HOURS
    ):
        raise InvalidInput(
            f"duration {hours!r} h is out of range: use a whole number of hours from "
            f"{MIN_DURATION_HOURS} to {MAX_DURATION_HOURS}"
        )
    return hours


def run_seed(run_id: str) -> int:
    """A seed derived from the run id only, so the same id always picks the same scenarios."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    environment: str
    trigger: str
    scenarios: tuple[str, ...]
    duration_hours: int = DEFAULT_DURATION_HOURS
    started_at: datetime = field(default=None)  # type: ignore[assignment]  # derived from run_id
    git_sha: str = "unknown"
    actor: str = "unknown"
    size: str | None = None
    # Slot of each Graph scenario's identity pool this run borrows (haymaker/graphlease.py); `up` leases them.
    graph_leases: tuple[tuple[str, int], ...] = ()
    variant: str = "run"

    def __post_init__(self) -> None:
        minute = check_run_id(self.run_id)
        if self.started_at is None:
            object.__setattr__(self, "started_at", minute)
        if self.started_at.tzinfo is None:
            raise InvalidInput("started_at must be timezone-aware (UTC)")
        check_environment(self.environment)
        if self.trigger not in TRIGGERS:
            raise InvalidInput(f"trigger {self.trigger!r} is unknown: use one of {', '.join(TRIGGERS)}")
        if self.variant not in VARIANTS:
            raise InvalidInput(f"variant {self.variant!r} is unknown: use one of {', '.join(VARIANTS)}")
        if self.variant == "try" and (len(self.scenarios) != 1 or self.graph_leases):
            raise InvalidInput("a try runs exactly one scenario and borrows no Graph identity")
        check_duration(self.duration_hours)
        if not self.scenarios:
            raise InvalidInput("a run needs at least one scenario")
        if len(set(self.scenarios)) != len(self.scenarios):
            raise InvalidInput("a run may name each scenario only once")
        object.__setattr__(self, "scenarios", tuple(self.scenarios))
        leases = dict(self.graph_leases.items() if isinstance(self.graph_leases, dict) else self.graph_leases)
        for scenario, slot in leases.items():
            if scenario not in self.scenarios:
                raise InvalidInput(f"graph lease for {scenario!r}, which is not a scenario of this run")
            if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
                raise InvalidInput(f"graph lease of {scenario}: slot {slot!r} is not a whole number from 0")
        object.__setattr__(self, "graph_leases", tuple(sorted(leases.items())))

    def graph_slot(self, scenario: str) -> int:
        """The leased slot of a Graph scenario's identity pool; 0 when not leased (an offline plan)."""
        return dict(self.graph_leases).get(scenario, 0)

    @property
    def stack_name(self) -> str:
        return f"run-{self.run_id}"

    @property
    def expires_at(self) -> datetime:
        return self.started_at + timedelta(hours=self.duration_hours)

    def stack_tags(self) -> dict[str, str]:
        """Pulumi stack tags of the run stack; the reaper reads haymaker:expires."""
        tags = {"haymaker:kind": "run", "haymaker:env": self.environment, "haymaker:expires": iso(self.expires_at),
                "haymaker:trigger": self.trigger, "haymaker:git-sha": self.git_sha}
        if self.graph_leases:
            tags[LEASE_TAG] = format_leases(dict(self.graph_leases))
        if self.variant != "run":
            tags["haymaker:variant"] = self.variant
        return tags

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scenarios"] = list(self.scenarios)
        d["started_at"] = iso(self.started_at)
        d["expires_at"] = iso(self.expires_at)
        d["graph_leases"] = dict(self.graph_leases)
        if not d["graph_leases"]:
            del d["graph_leases"]
        if d["variant"] == "run":  # every run stack written before variants existed reads the same
            del d["variant"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        try:
            fields = {k: d[k] for k in ("run_id", "environment", "trigger", "scenarios")}
            fields["scenarios"] = tuple(fields["scenarios"])
            for k in ("duration_hours", "git_sha", "actor", "size", "graph_leases", "variant"):
                if k in d:
                    fields[k] = d[k]
            if d.get("started_at"):
                fields["started_at"] = parse_iso(d["started_at"])
        except KeyError as e:
            raise InvalidInput(f"run spec is missing {e.args[0]!r}") from None
        return cls(**fields)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s: str) -> datetime:
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{s!r} is not an ISO-8601 time such as 2026-11-21T06:00:00Z") from None
    if t.tzinfo is None:
        raise InvalidInput(f"{s!r} has no time zone: add Z for UTC")
    return t.astimezone(timezone.utc)
