"""The platform program: the long-lived pieces of one environment (stacks dev, staging, prod).

Run stacks read ``managedEnvironmentId`` through a StackReference; workflows read the rest
(``pulumi stack output --stack <env>``). Nothing secret is exported: the workspace key goes only
into the managed environment, as a secret, and no identity here has a secret at all.

The program creates no identity a workflow can obtain and grants no right that can grant rights: a
person creates those once (haymaker/trust.py, `haymaker platform bootstrap --print`); what it grants
is the trust table's PLATFORM grants, to object ids from its config.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

from components.deployer import EnvironmentGrants, EnvironmentGrantsArgs
from components.graphidentity import GraphIdentities, GraphIdentitiesArgs, check_graph_identities
from components.platform import (ActivityLogExport, ActivityLogExportArgs, AgentRegistry, AgentRegistryArgs, Ledger,
                                 LedgerArgs, PlatformEnvironment, PlatformEnvironmentArgs, check_environment,
                                 check_registry_name, register_platform_tag_transform, registry_name_of)
from haymaker import trust
from scenarios.catalog import load_catalog
from stacks.config import PlatformSettings


def platform_program(settings: PlatformSettings) -> dict:
    """Declare the environment's platform and export what runs and workflows read. Returns the outputs."""
    env, location = settings.name, settings.environment.location
    registry_name = registry_name_of(settings.environment.agent_image)
    # Everything the settings decide is checked before the first resource is declared.
    check_environment(env)
    if registry_name:
        check_registry_name(registry_name)
    trust.check_repository(settings.github_repository)
    catalog = load_catalog()
    table = trust.load_table(env, catalog, pool_size=settings.graph_identity_pool_size)
    object_ids = trust.check_object_ids(table, settings.identity_object_ids)
    graph_scenarios = tuple((s.name, s.graph_permissions) for s in catalog.scenarios.values() if s.graph_permissions)
    check_graph_identities(env, graph_scenarios, settings.graph_identity_pool_size)
    register_platform_tag_transform(env)

    client = authorization.get_client_config_output()
    tenant_id, subscription_id = client.tenant_id, client.subscription_id

    platform = PlatformEnvironment("platform", PlatformEnvironmentArgs(
        environment=env, location=location, log_retention_days=settings.log_retention_days))
    # The subscription's Activity Log goes to the same workspace as the agents' console logs.
    ActivityLogExport("activity-log", ActivityLogExportArgs(environment=env, workspace_id=platform.workspace_id))
    ledger = Ledger("ledger", LedgerArgs(
        environment=env, location=location, resource_group_name=platform.resource_group_name,
        subscription_id=subscription_id, sku=settings.storage_sku))
    registry = None
    if registry_name:
        registry = AgentRegistry("registry", AgentRegistryArgs(
            environment=env, location=location, registry_name=registry_name,
            resource_group_name=platform.resource_group_name, subscription_id=subscription_id))
    scopes = {trust.LEDGER: ledger.account_id, trust.REPORTS: ledger.reports_container_id,
              trust.WORKSPACE: platform.workspace_id, trust.REGISTRY: registry.registry_id if registry else None}
    EnvironmentGrants("grants", EnvironmentGrantsArgs(
        environment=env, subscription_id=subscription_id, object_ids=object_ids, scopes=scopes,
        grants=tuple(trust.platform_grants(table))))
    # Runs borrow these for Graph scenarios; teardown signs in as them from the GitHub Environments the table names.
    graph_subjects = sorted({name for i in table.of_kind(trust.GRAPH_IDENTITY) for name in i.github_environments})
    graph_identities = GraphIdentities("graph", GraphIdentitiesArgs(
        environment=env, location=location, resource_group_name=platform.resource_group_name,
        scenarios=graph_scenarios, pool_size=settings.graph_identity_pool_size,
        federated_subjects=tuple((f"github-{name}", f"repo:{settings.github_repository}:environment:{name}")
                                 for name in graph_subjects)))

    outputs = {
        "managedEnvironmentId": platform.managed_environment_id,
        "resourceGroupName": platform.resource_group_name,
        "logAnalyticsWorkspaceId": platform.workspace_id,
        "ledgerTableEndpoint": ledger.table_endpoint,
        "reportsContainerUrl": ledger.reports_container_url,
        "tenantId": tenant_id,
        "subscriptionId": subscription_id,
        # Co-owner of the agents' applications, so the reaper can delete them (components/agent.py).
        "reaperObjectId": object_ids[trust.REAPER],
        # {scenario: {permissions, identities: [{id, clientId, principalId}]}}: what runs lease from.
        "graphIdentities": graph_identities.exported,
    }
    if registry:
        outputs.update({
            "acrLoginServer": registry.login_server,
            # Agent jobs pull the image with this identity (job identity + registries[].identity).
            "agentPullIdentityId": registry.pull_identity_id,
            "agentPullIdentityClientId": registry.pull_identity_client_id,
        })
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
