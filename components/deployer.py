"""EnvironmentGrants: what the platform grants the environment's identities on its own resources.

The identities GitHub Actions obtains (applications trusted by one GitHub Environment each, no secret)
are created by a person once, together with every right that could grant rights (haymaker/trust.py,
`haymaker platform bootstrap --print`): the platform deployer creates no identity a workflow can obtain
and can hand out no role that grants. What it grants here, to object ids from the platform's config
(``haymaker:identityObjectIds``), is exactly the trust table's PLATFORM grants: the ledger tables, the
reports container, the workspace and the registry. Its own role assignment condition allows these roles,
to service principals, and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import pulumi

from components.platform import check_environment, grant
from haymaker.errors import InvalidInput


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class EnvironmentGrantsArgs:
    environment: str
    subscription_id: pulumi.Input[str]
    object_ids: Mapping[str, str]  # identity key -> its service principal's object id
    scopes: Mapping[str, pulumi.Input[str]]  # scope name -> ARM id (a scope left out: its grants are skipped)
    grants: tuple[tuple[str, str, str], ...]  # (identity key, role, scope), from trust.platform_grants

    def validate(self) -> None:
        check_environment(self.environment)
        missing = sorted({key for key, _, _ in self.grants} - set(self.object_ids))
        if missing:
            raise InvalidInput(f"no object id for {', '.join(missing)}: set haymaker:identityObjectIds")


class EnvironmentGrants(pulumi.ComponentResource):
    def __init__(self, name: str, args: EnvironmentGrantsArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:platform:EnvironmentGrants", name, None, opts)
        self.role_assignments = [
            grant(f"{name}-{key}-{_slug(role)}-{scope}", role=role, scope=args.scopes[scope],
                  principal_id=args.object_ids[key], subscription_id=args.subscription_id,
                  purpose=f"{args.environment} {key} {role} on {scope}", parent=self)
            for key, role, scope in args.grants if args.scopes.get(scope) is not None
        ]
        self.role_assignment_ids = pulumi.Output.all(*[ra.id for ra in self.role_assignments])
        self.register_outputs({"role_assignment_ids": self.role_assignment_ids})
