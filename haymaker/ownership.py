"""What a teardown may delete: only what it can prove is the run's.

A tag is a claim anyone with Tag Contributor can write, and a name anyone can copy. So the proof of a
run's resource group is all of: its exact name (``haymaker-<run>-<scenario>`` for a scenario of the run,
or ``haymaker-<run>-run``), the run and environment tags, and, where ARM returns ``systemData``, a
creator that is the deployer or one of the run's agents. A directory object is the run's when one of its
owners is the deployer (then its name must be an agent application's, ``haymaker-<run>-<scenario>``) or
one of the identities the run borrowed. A soft-deleted Key Vault or Cognitive Services account is the
run's when its original group is one of the run's groups. Anything else that looks like the run's is
*suspicious*: reported, never deleted, and never a reason to keep the run's stack.

The scenarios come from the run stack's outputs and the ledger's inventory; when neither can be read,
every scenario of the catalog stands in (the names stay exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from haymaker import naming

RUN_TAG, ENV_TAG = "haymaker-run", "haymaker-env"


@dataclass(frozen=True)
class RunProof:
    run_id: str
    environment: str
    scenarios: frozenset[str]
    deployer: frozenset[str]  # the deployer's client and object ids (lower case)
    agents: frozenset[str] = frozenset()  # the run's agents' client and service principal object ids
    borrowed: tuple = ()  # haymaker.azure.Borrowed of each identity the run borrowed
    extra_groups: frozenset[str] = field(default_factory=frozenset)  # group names the inventory recorded

    @property
    def groups(self) -> frozenset[str]:
        """The exact names of the run's resource groups (lower case)."""
        names = {naming.resource_group_name(self.run_id, s) for s in self.scenarios}
        names.add(naming.run_resource_group_name(self.run_id))
        return frozenset(n.lower() for n in names | set(self.extra_groups))

    @property
    def agent_apps(self) -> frozenset[str]:
        return frozenset(naming.app_display_name(self.run_id, s).lower() for s in self.scenarios)

    @property
    def creators(self) -> frozenset[str]:
        return self.deployer | self.agents

    def group_reason(self, name: str, tags: Mapping | None, created_by: str | None) -> str:
        """Why a resource group is not provably the run's ("" when it is)."""
        tags = tags or {}
        if name.lower() not in self.groups:
            return f"tagged with run {self.run_id} but not named as one of its groups"
        if tags.get(RUN_TAG) != self.run_id:
            return f"named like the run's group but its {RUN_TAG} tag is {tags.get(RUN_TAG)!r}"
        if tags.get(ENV_TAG) != self.environment:
            return f"its {ENV_TAG} tag is {tags.get(ENV_TAG)!r}, not {self.environment!r}"
        # The contract leaves createdBy's form open (an application id or an object id): both count.
        if created_by and created_by.lower() not in self.creators:
            return f"created by {created_by}, neither the deployer nor one of the run's agents"
        return ""

    def owner_of(self, name: str, owners: Iterable[str], kind: str) -> str | None:
        """The identity that may delete a directory object as its owner: "" for the deployer, a borrowed
        client id, or None when no run identity owns it (suspicious)."""
        owned = {o.lower() for o in owners}
        if owned & self.deployer and kind in ("application", "service_principal") \
                and name.lower() in self.agent_apps:
            return ""
        prefix = f"haymaker-{self.run_id}-"
        for b in self.borrowed:
            if b.client_id.lower() in owned and name.lower().startswith(prefix):
                return b.client_id
        return None

    def owns_deleted_container(self, group: str) -> bool:
        """A soft-deleted vault or account is the run's when its original group is one of the run's."""
        return group.lower() in self.groups


def ids_of(*values: str | None) -> frozenset[str]:
    return frozenset(v.lower() for v in values if v)
