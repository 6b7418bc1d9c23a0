"""The platform program: the long-lived pieces of one environment (stacks dev, staging, prod).

Run stacks read ``managedEnvironmentId`` through a StackReference; workflows read the rest
(``pulumi stack output --stack <env>``). Nothing secret is exported: the workspace key goes only
into the managed environment, as a secret, and the deployer has no secret at all (OIDC).
"""

from __future__ import annotations

import pulumi
import pulumi_azuread as azuread
from pulumi_azure_native import authorization

from components.deployer import (DeploymentIdentity, DeploymentIdentityArgs, check_deployer_inputs,
                                 github_branch_subject, github_subject)
from components.graphidentity import GraphIdentities, GraphIdentitiesArgs, check_graph_identities
from components.platform import (ActivityLogExport, ActivityLogExportArgs, AgentRegistry, AgentRegistryArgs, Ledger,
                                 LedgerArgs, PlatformEnvironment, PlatformEnvironmentArgs, check_environment,
                                 check_registry_name, register_platform_tag_transform, registry_name_of)
from components.roles import MICROSOFT_GRAPH_APP_ID
from scenarios.catalog import load_catalog
from stacks.config import PlatformSettings


def platform_program(settings: PlatformSettings) -> dict:
    """Declare the environment's platform and export what runs and workflows read. Returns the outputs."""
    env, location = settings.name, settings.environment.location
    github_environments = (env,)  # the GitHub Environment named like the stack deploys it
    registry_name = registry_name_of(settings.environment.agent_image)
    # Everything the settings decide is checked before the first resource is declared.
    check_environment(env)
    if registry_name:
        check_registry_name(registry_name)
    check_deployer_inputs(settings.github_repository, github_environments)
    graph_scenarios = tuple((s.name, s.graph_permissions) for s in load_catalog().scenarios.values()
                            if s.graph_permissions)
    check_graph_identities(env, graph_scenarios, settings.graph_identity_pool_size)
    register_platform_tag_transform(env)

    # The identity running this program: more privileged than the deployer it creates (see
    # components/deployer.py), and the owner of the deployer's Entra application.
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
    graph = azuread.get_service_principal_output(client_id=MICROSOFT_GRAPH_APP_ID)
    deployer_args = DeploymentIdentityArgs(
        environment=env, github_repository=settings.github_repository, github_environments=github_environments,
        subscription_id=subscription_id, owner_object_id=client.object_id,
        graph_service_principal_id=graph.object_id, ledger_account_id=ledger.account_id,
        reports_container_id=ledger.reports_container_id,
        registry_id=registry.registry_id if registry else None)
    deployer = DeploymentIdentity("deployer", deployer_args)
    subjects = [("github-environment", github_subject(settings.github_repository, env))]
    if deployer_args.trusted_branch:
        subjects.append(("github-branch", github_branch_subject(settings.github_repository,
                                                                deployer_args.trusted_branch)))
    # Runs borrow these for Graph scenarios; teardown signs in as them with the deployer's GitHub subjects.
    graph_identities = GraphIdentities("graph", GraphIdentitiesArgs(
        environment=env, location=location, resource_group_name=platform.resource_group_name,
        graph_service_principal_id=graph.object_id, scenarios=graph_scenarios,
        pool_size=settings.graph_identity_pool_size,
        federated_subjects=tuple(subjects)))

    outputs = {
        "managedEnvironmentId": platform.managed_environment_id,
        "resourceGroupName": platform.resource_group_name,
        "logAnalyticsWorkspaceId": platform.workspace_id,
        "ledgerTableEndpoint": ledger.table_endpoint,
        "reportsContainerUrl": ledger.reports_container_url,
        "deployerClientId": deployer.client_id,
        "tenantId": tenant_id,
        "subscriptionId": subscription_id,
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
