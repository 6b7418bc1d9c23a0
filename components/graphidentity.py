"""GraphIdentities: the identities runs borrow for scenarios that need Microsoft Graph permissions.

Graph application permissions need admin consent, which no identity a workflow can obtain may give
(``AppRoleAssignment.ReadWrite.All`` would let it grant itself anything). So the platform stack provisions,
for each Graph scenario of the catalog, a small pool of credential-less user-assigned managed identities,
and a Privileged Role Administrator grants each its scenario's Graph roles once (`haymaker platform
grants` prints the exact grants; `doctor` and `up` verify them read-only). A run leases one of them per
Graph scenario (haymaker/graphlease.py), attaches it to that scenario's agent job and grants it Azure
roles on the scenario's resource group only; the agent signs in with ``az login --identity --client-id``.
Two live runs never share one, so the Activity Log's caller still names exactly one run.

Each identity trusts the GitHub Environments of its environment's run deployer and reaper (the trust
table, haymaker/trust.py): teardown signs in as the identity (``ClientAssertionCredential``) to find and
delete the directory objects the agent created with it, which neither may touch as itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import managedidentity

from components.platform import check_environment
from components.roles import GRAPH_APP_ROLES, GRAPH_ESCALATION_ROLES
from haymaker.errors import InvalidInput
from haymaker.graphlease import check_pool_size, graph_identity_name
from haymaker.trust import GITHUB_AUDIENCE, GITHUB_ISSUER

_IDENTITY_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$")  # user-assigned identity names


@dataclass(frozen=True)
class GraphIdentitiesArgs:
    environment: str
    location: str
    resource_group_name: pulumi.Input[str]
    scenarios: tuple[tuple[str, tuple[str, ...]], ...]  # (scenario, its Graph permissions)
    pool_size: int
    # (credential name, OIDC subject): the run deployer's and the reaper's, so their teardowns can sign in.
    federated_subjects: tuple[tuple[str, str], ...] = ()

    def validate(self) -> None:
        check_graph_identities(self.environment, self.scenarios, self.pool_size)


def check_graph_identities(environment: str, scenarios, pool_size: int) -> None:
    """What the pools must satisfy, checkable before anything is declared."""
    check_environment(environment)
    check_pool_size(pool_size)
    for scenario, permissions in scenarios:
        if not permissions:
            raise InvalidInput(f"{scenario}: a Graph identity needs at least one Graph permission")
        for perm in permissions:
            if perm in GRAPH_ESCALATION_ROLES:
                raise InvalidInput(f"{scenario}: Graph permission {perm} can grant more permissions: "
                                   "no HayMaker identity may hold it")
            if perm not in GRAPH_APP_ROLES:
                raise InvalidInput(f"{scenario}: unknown Graph permission {perm!r}: use one of components/roles.py")
        name = graph_identity_name(environment, scenario, pool_size - 1)
        if not _IDENTITY_NAME_RE.match(name):
            raise InvalidInput(f"{scenario}: identity name {name!r} breaks managed identity naming rules")


class GraphIdentities(pulumi.ComponentResource):
    """Per Graph scenario, ``pool_size`` credential-less identities (a person grants their Graph roles)."""

    def __init__(self, name: str, args: GraphIdentitiesArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:platform:GraphIdentities", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.identities: dict[str, list[managedidentity.UserAssignedIdentity]] = {}
        self.federated_credentials: list[managedidentity.FederatedIdentityCredential] = []
        for scenario, permissions in args.scenarios:
            pool = []
            for slot in range(args.pool_size):
                prefix = f"{name}-{scenario}-{slot}"
                identity = managedidentity.UserAssignedIdentity(
                    prefix, resource_name_=graph_identity_name(args.environment, scenario, slot),
                    resource_group_name=args.resource_group_name, location=args.location, opts=child)
                pool.append(identity)
                previous = None
                for credential, subject in args.federated_subjects:
                    # One at a time: concurrent credential writes under one identity are refused.
                    previous = managedidentity.FederatedIdentityCredential(
                        f"{prefix}-{credential}", resource_group_name=args.resource_group_name,
                        resource_name_=identity.name, federated_identity_credential_resource_name=credential,
                        issuer=GITHUB_ISSUER, subject=subject, audiences=[GITHUB_AUDIENCE],
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else None))
                    self.federated_credentials.append(previous)
            self.identities[scenario] = pool

        permissions_of = dict(args.scenarios)
        self.exported = pulumi.Output.from_input({}) if not self.identities else pulumi.Output.all(**{
            scenario: pulumi.Output.all(*[
                pulumi.Output.all(id=i.id, clientId=i.client_id, principalId=i.principal_id) for i in pool])
            for scenario, pool in self.identities.items()
        }).apply(lambda pools: {s: {"permissions": list(permissions_of[s]), "identities": list(v)}
                                for s, v in pools.items()})
        self.register_outputs({"graph_identities": self.exported})
