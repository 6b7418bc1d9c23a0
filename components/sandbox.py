"""ScenarioSandbox: one scenario's resource group for `haymaker try`, where the agent is the operator.

A try runs the agent on the operator's machine with the operator's own `az login`, so nothing else of a
ScenarioAgent is declared: no Entra application or credential (they need Graph consent), no role
assignment (the operator already holds their rights), no job (it needs the platform's environment and
registry). The group is tagged like every run resource by the stack's tag transform.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import resources

from haymaker import naming
from haymaker.errors import InvalidInput
from haymaker.runspec import check_run_id


class ScenarioSandbox(pulumi.ComponentResource):
    def __init__(self, name: str, *, run_id: str, location: str, opts: pulumi.ResourceOptions | None = None):
        check_run_id(run_id)
        group = naming.resource_group_name(run_id, name)
        if not naming.is_valid_resource_group_name(group):
            raise InvalidInput(f"{name}: resource group name {group!r} is invalid")
        super().__init__("haymaker:index:ScenarioSandbox", name, None, opts)
        self.resource_group = resources.ResourceGroup(
            f"{name}-rg", resource_group_name=group, location=location, opts=pulumi.ResourceOptions(parent=self))
        self.resource_group_name = self.resource_group.name
        self.resource_group_id = self.resource_group.id
        self.register_outputs({"resource_group_name": self.resource_group_name,
                               "resource_group_id": self.resource_group_id})
