"""The run program: one ScenarioAgent per scenario, and the run's inventory as stack outputs."""

from __future__ import annotations

from datetime import timedelta

import pulumi
from pulumi_azure_native import authorization, resources

from components.agent import BorrowedIdentity, ScenarioAgent, ScenarioAgentArgs
from components.aliases import register_drop_type_aliases
from components.sandbox import ScenarioSandbox
from components.tags import register_tag_transform
from haymaker import naming
from haymaker.errors import InvalidInput
from haymaker.runspec import RunSpec, iso
from haymaker.settings import EnvironmentSettings
from scenarios.catalog import Catalog, load_catalog

INVENTORY_FIELDS = ("resource_group_name", "resource_group_id", "client_id",
                    "service_principal_object_id", "job_name", "job_id")


def platform_stack_name(spec: RunSpec, settings: EnvironmentSettings) -> str:
    return settings.platform_stack or f"{pulumi.get_organization()}/{pulumi.get_project()}/{spec.environment}"


def borrowed_identity(graph_identities: pulumi.Output, scenario, slot: int) -> BorrowedIdentity:
    """The platform identity of ``scenario`` in the leased ``slot``; a clear error when the platform
    does not provide it (a scenario added or changed since the platform was last released)."""

    def pick(pools: dict) -> dict:
        entry = (pools or {}).get(scenario.name)
        if entry is None:
            raise InvalidInput(f"{scenario.name}: the platform provides no Graph identity for it: release the "
                               "platform (platform.yml) after adding a Graph scenario")
        missing = sorted(set(scenario.graph_permissions) - set(entry.get("permissions") or []))
        if missing:
            raise InvalidInput(f"{scenario.name}: its platform identity lacks {', '.join(missing)}: release the "
                               "platform (platform.yml) so it grants the scenario's Graph permissions")
        identities = entry.get("identities") or []
        if slot >= len(identities):
            raise InvalidInput(f"{scenario.name}: leased slot {slot} but the platform has {len(identities)} "
                               "identities for it: lease again, or release the platform with a larger pool")
        return identities[slot]

    chosen = graph_identities.apply(pick)
    return BorrowedIdentity(id=chosen.apply(lambda i: i["id"]), client_id=chosen.apply(lambda i: i["clientId"]),
                            principal_id=chosen.apply(lambda i: i["principalId"]))


def _begin(spec: RunSpec, settings: EnvironmentSettings, catalog: Catalog | None) -> list:
    """The run's scenarios, checked, with the aliases and the tag transform registered before anything."""
    catalog = catalog or load_catalog()
    missing = [n for n in spec.scenarios if n not in catalog]
    if missing:
        raise InvalidInput(f"scenarios not in the catalog: {', '.join(missing)}")
    if settings.environment != spec.environment:
        raise InvalidInput(f"settings are for {settings.environment!r} but the run is for {spec.environment!r}")
    register_drop_type_aliases()
    register_tag_transform(spec.run_id, spec.environment, iso(spec.expires_at), spec.scenarios)
    return [catalog[n] for n in spec.scenarios]


def _export(spec: RunSpec, inventory, run_resource_group, client=None) -> dict:
    run = {"run_id": spec.run_id, "environment": spec.environment, "trigger": spec.trigger,
           "started_at": iso(spec.started_at), "expires_at": iso(spec.expires_at),
           "duration_hours": spec.duration_hours, "git_sha": spec.git_sha, "run_resource_group": run_resource_group}
    if spec.variant != "run":
        run["variant"] = spec.variant
    outputs = {"run": run, "inventory": inventory}
    if client is not None:  # who deployed: ARM records it as the groups' creator, which teardown checks
        outputs["deployer"] = {"client_id": client.client_id, "object_id": client.object_id}
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def run_program(spec: RunSpec, settings: EnvironmentSettings, catalog: Catalog | None = None) -> dict:
    """Declare the run and export its inventory. Returns the exported outputs."""
    if spec.variant == "try":
        return try_program(spec, settings, catalog)
    scenarios = _begin(spec, settings, catalog)

    client = authorization.get_client_config_output()
    tenant_id, subscription_id, deployer_id = client.tenant_id, client.subscription_id, client.object_id
    platform = pulumi.StackReference(platform_stack_name(spec, settings))
    managed_environment_id = platform.require_output("managedEnvironmentId")
    pull_identity_id = platform.require_output("agentPullIdentityId")
    registry_server = platform.require_output("acrLoginServer")
    # The environment's reaper co-owns the agents' applications, so it can delete them (haymaker/trust.py).
    reaper = platform.get_output("reaperObjectId").apply(lambda oid: [oid] if oid else [])
    run_group = resources.ResourceGroup(
        "run-rg", resource_group_name=naming.run_resource_group_name(spec.run_id), location=settings.location)
    graph_identities = platform.require_output("graphIdentities") if any(s.graph_permissions for s in scenarios) \
        else None

    start_at = spec.started_at + timedelta(minutes=settings.start_delay_minutes)
    agents = {
        s.name: ScenarioAgent(s.name, ScenarioAgentArgs(
            run_id=spec.run_id, environment=spec.environment, scenario=s.name,
            azure_roles=s.azure_roles, graph_permissions=s.graph_permissions,
            borrowed_identity=borrowed_identity(graph_identities, s, spec.graph_slot(s.name))
            if s.graph_permissions else None, location=settings.location,
            agent_image=settings.agent_image, duration_hours=spec.duration_hours,
            expires_at=spec.expires_at, start_at=start_at,
            managed_environment_id=managed_environment_id, job_resource_group_name=run_group.name,
            tenant_id=tenant_id, subscription_id=subscription_id, owner_object_id=deployer_id, co_owner_object_ids=reaper, cpu=s.cpu, memory=s.memory,
            cleanup_buffer_minutes=settings.cleanup_buffer_minutes, scenario_cleanup_minutes=s.cleanup_minutes,
            pull_identity_id=pull_identity_id, registry_server=registry_server,
            credential_grace_minutes=settings.credential_grace_minutes,
            admin_unit_id=settings.groups_admin_unit_id,
        ))
        for s in scenarios
    }
    inventory = pulumi.Output.all(*[
        pulumi.Output.all(**{f: getattr(agent, f) for f in INVENTORY_FIELDS}).apply(
            lambda v, name=name: {"scenario": name, **v})
        for name, agent in agents.items()
    ])
    return _export(spec, inventory, run_group.name, client)


def try_program(spec: RunSpec, settings: EnvironmentSettings, catalog: Catalog | None = None) -> dict:
    """The try variant (`haymaker try`): each scenario's resource group and nothing of the platform. The
    agent is the operator on their own machine, so its identity in the inventory is the deploying
    identity (``getClientConfig``: the operator's `az login`) and there is no job."""
    scenarios = _begin(spec, settings, catalog)
    client = authorization.get_client_config_output()
    sandboxes = {s.name: ScenarioSandbox(s.name, run_id=spec.run_id, location=settings.location) for s in scenarios}
    inventory = pulumi.Output.all(*[
        pulumi.Output.all(box.resource_group_name, box.resource_group_id, client.object_id).apply(
            lambda v, name=name: {"scenario": name, "resource_group_name": v[0], "resource_group_id": v[1],
                                  # A user has no client id of their own: attribution goes by object id.
                                  "client_id": "", "service_principal_object_id": v[2], "job_name": "", "job_id": ""})
        for name, box in sandboxes.items()
    ])
    return _export(spec, inventory, "", client)
