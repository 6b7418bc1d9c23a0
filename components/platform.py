"""The long-lived platform of one environment: where run stacks put their agent jobs, where the
ledger lives, and the registry the agents are pulled from.

- ``PlatformEnvironment``: resource group (with a delete lock), Log Analytics workspace, Container
  Apps managed environment (consumption) that ships its logs to the workspace.
- ``Ledger``: storage account (Entra auth only) with the ledger tables and the ``reports`` container.
- ``AgentRegistry``: Azure Container Registry (Basic, no admin user) and the user-assigned identity
  agent jobs pull with (AcrPull on the registry only).
- ``ActivityLogExport``: the subscription's Activity Log sent to the workspace, next to the agents'
  console logs, so a run's expected operations can be compared with what Azure recorded.

Physical names derive from the environment (and, for the globally unique storage account, a hash
of the subscription), so they are the same on every ``up``. Tags come from one stack transform.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import app, authorization, containerregistry, managedidentity, monitor, \
    operationalinsights, resources, storage

from components.roles import BUILTIN_ROLES
from components.tags import MANAGED_TAG, tags_kind
from haymaker.errors import InvalidInput
from haymaker.naming import short_hash

COMPONENT_TAG = "haymaker-component"
# The ledger's tables: the names haymaker/ledger.py writes to (RUNS, AGENTS, EVENTS there).
LEDGER_TABLES = ("runs", "agents", "events")
REPORTS_CONTAINER = "reports"
ENVIRONMENT_RE = re.compile(r"^[a-z][a-z0-9]{1,9}$")  # keeps every derived name inside Azure's limits
STORAGE_ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
REGISTRY_RE = re.compile(r"^[a-zA-Z0-9]{5,50}$")
ACR_SUFFIX = ".azurecr.io"
# Activity Log categories (Azure Monitor's subscription log categories). Exported: what an answer key
# needs, namely every control-plane write (Administrative), Defender alerts (Security), policy effects,
# fired alerts, and service and resource health that explain a missing or failed event. Left out:
# Autoscale and Recommendation (Advisor), which no scenario causes.
ACTIVITY_LOG_CATEGORIES = ("Administrative", "Security", "Policy", "Alert", "ServiceHealth", "ResourceHealth")
ALL_ACTIVITY_LOG_CATEGORIES = ACTIVITY_LOG_CATEGORIES + ("Autoscale", "Recommendation")
# Fixed, project-owned namespace: role assignment names are GUIDs derived from what they grant.
_ASSIGNMENT_NS = uuid.UUID("0b8e5f4c-3a7d-4c1e-9f26-706c6174666d")


# --- names --------------------------------------------------------------------------------------

def check_environment(environment: str) -> None:
    if not ENVIRONMENT_RE.match(str(environment)):
        raise InvalidInput(f"environment {environment!r} is not 2-10 lowercase letters and digits starting "
                           "with a letter: platform names derive from it")


def check_registry_name(registry_name: str) -> None:
    if not REGISTRY_RE.match(str(registry_name)):
        raise InvalidInput(f"registry name {registry_name!r} is not 5-50 letters and digits: "
                           "fix the registry host of haymaker:agentImage")


def platform_resource_group_name(environment: str) -> str:
    return f"haymaker-{environment}-platform"


def managed_environment_name(environment: str) -> str:
    return f"haymaker-{environment}"


def ledger_account_name(environment: str, subscription_id: str) -> str:
    """``hm<env>ledger<6 hex>``: 3-24 lowercase alphanumerics, globally unique per subscription and env."""
    return f"hm{environment}ledger{short_hash('ledger', subscription_id, environment)}"


def registry_name_of(agent_image: str) -> str | None:
    """``haymakerdev`` for ``haymakerdev.azurecr.io/...``; None when the image is not in an ACR."""
    host = agent_image.split("/", 1)[0].lower()
    return host.removesuffix(ACR_SUFFIX) if host.endswith(ACR_SUFFIX) else None


def assignment_name(*parts: pulumi.Input[str]) -> pulumi.Output[str]:
    """A role assignment name (a GUID) that is the same on every ``up`` for the same grant."""
    return pulumi.Output.all(*parts).apply(lambda p: str(uuid.uuid5(_ASSIGNMENT_NS, "/".join(p))))


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("/subscriptions/", subscription_id,
                                "/providers/Microsoft.Authorization/roleDefinitions/", BUILTIN_ROLES[role].guid)


def grant(name: str, *, role: str, scope: pulumi.Input[str], principal_id: pulumi.Input[str],
          subscription_id: pulumi.Input[str], purpose: str, parent: pulumi.Resource,
          condition: str | None = None) -> authorization.RoleAssignment:
    """A role assignment to a service principal (or managed identity), named after what it grants."""
    return authorization.RoleAssignment(
        name,
        role_assignment_name=assignment_name(subscription_id, purpose, BUILTIN_ROLES[role].guid),
        scope=scope,
        principal_id=principal_id,
        # Set explicitly: ARM then skips the directory lookup that fails while a new principal replicates.
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=role_definition_id(subscription_id, role),
        condition=condition,
        condition_version="2.0" if condition else None,
        description=f"HayMaker {purpose}",
        opts=pulumi.ResourceOptions(parent=parent),
    )


# --- tags ---------------------------------------------------------------------------------------

def platform_tags(environment: str) -> dict[str, str]:
    """Platform resources are HayMaker's but belong to no run: no haymaker-run or haymaker-expires."""
    return {MANAGED_TAG: "true", "haymaker-env": environment, COMPONENT_TAG: "platform"}


def make_platform_tag_transform(environment: str):
    ours = platform_tags(environment)

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        kind = tags_kind(args.type_) if args.custom else None
        if kind is None:
            return None
        existing = args.props.get("tags")
        if kind == "map":
            tags = {**(existing if isinstance(existing, dict) else {}), **ours}
        else:  # azuread: "key=value" strings
            tags = [t for t in existing or [] if isinstance(t, str) and t.split("=", 1)[0] not in ours]
            tags += [f"{k}={v}" for k, v in ours.items()]
        return pulumi.ResourceTransformResult(props={**args.props, "tags": tags}, opts=args.opts)

    return transform


def register_platform_tag_transform(environment: str) -> None:
    """Tag every taggable resource declared after this call in the platform stack."""
    pulumi.runtime.register_resource_transform(make_platform_tag_transform(environment))


# --- components ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlatformEnvironmentArgs:
    environment: str
    location: str
    log_retention_days: int = 30

    def validate(self) -> None:
        check_environment(self.environment)
        if not 30 <= self.log_retention_days <= 730:
            raise InvalidInput(f"log retention {self.log_retention_days} days is outside 30-730")


class PlatformEnvironment(pulumi.ComponentResource):
    """Resource group, Log Analytics workspace and the Container Apps environment agent jobs run in."""

    def __init__(self, name: str, args: PlatformEnvironmentArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:platform:Environment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        env = args.environment

        self.resource_group = resources.ResourceGroup(
            f"{name}-rg", resource_group_name=platform_resource_group_name(env), location=args.location, opts=child)
        # The platform carries AzureHayMaker-managed=true like run resources do, so a sweep for
        # orphaned run resources that forgets to require a haymaker-run tag would select it. The lock
        # makes such a delete fail instead of taking the ledger with it; the deploying identity
        # (Contributor, RBAC Administrator) cannot remove locks.
        self.lock = authorization.ManagementLockAtResourceGroupLevel(
            f"{name}-lock", lock_name="haymaker-platform", resource_group_name=self.resource_group.name,
            level=authorization.LockLevel.CAN_NOT_DELETE,
            notes="HayMaker platform: the ledger and the environment runs use. Remove only to retire it.",
            opts=child)
        self.workspace = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=f"haymaker-{env}-logs",
            resource_group_name=self.resource_group.name,
            location=args.location,
            sku=operationalinsights.WorkspaceSkuArgs(name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018),
            retention_in_days=args.log_retention_days,
            opts=child)
        shared_key = operationalinsights.get_shared_keys_output(
            resource_group_name=self.resource_group.name, workspace_name=self.workspace.name,
            opts=pulumi.InvokeOutputOptions(parent=self)).primary_shared_key
        self.managed_environment = app.ManagedEnvironment(
            f"{name}-env",
            environment_name=managed_environment_name(env),
            resource_group_name=self.resource_group.name,
            location=args.location,
            # Consumption only: agent jobs pay per second and nothing is reserved between runs.
            workload_profiles=[app.WorkloadProfileArgs(name="Consumption", workload_profile_type="Consumption")],
            app_logs_configuration=app.AppLogsConfigurationArgs(
                destination="log-analytics",
                log_analytics_configuration=app.LogAnalyticsConfigurationArgs(
                    customer_id=self.workspace.customer_id,
                    shared_key=pulumi.Output.secret(shared_key),
                    # Each agent line stays whole in Log_s, where `haymaker logs` and `truth` read it; with
                    # dynamic columns a JSON line is split into Log_<field>_* columns and Log_s is empty.
                    dynamic_json_columns=False)),
            opts=child)

        self.resource_group_name = self.resource_group.name
        self.resource_group_id = self.resource_group.id
        self.workspace_id = self.workspace.id
        self.managed_environment_id = self.managed_environment.id
        self.register_outputs({
            "resource_group_name": self.resource_group_name,
            "resource_group_id": self.resource_group_id,
            "workspace_id": self.workspace_id,
            "managed_environment_id": self.managed_environment_id,
        })


@dataclass(frozen=True)
class LedgerArgs:
    environment: str
    location: str
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    sku: str = "Standard_LRS"

    def validate(self) -> None:
        check_environment(self.environment)
        if not self.sku.startswith("Standard_"):
            raise InvalidInput(f"ledger storage sku {self.sku!r}: use a Standard_* sku (tables need one)")


class Ledger(pulumi.ComponentResource):
    """The storage account that holds run history (tables) and reports (a blob container).

    Shared-key access is off: the ledger client authenticates with Entra ID (DefaultAzureCredential
    and the endpoint, haymaker/ledger.py), so no account key exists anywhere to leak. Tables and the
    container are created through ARM, which does not need the key either.
    """

    def __init__(self, name: str, args: LedgerArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:platform:Ledger", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.account = storage.StorageAccount(
            f"{name}-storage",
            account_name=pulumi.Output.from_input(args.subscription_id).apply(
                lambda sub: ledger_account_name(args.environment, sub)),
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=args.sku),
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            opts=child)
        self.tables = [
            storage.Table(f"{name}-table-{table}", table_name=table, account_name=self.account.name,
                          resource_group_name=args.resource_group_name, opts=child)
            for table in LEDGER_TABLES
        ]
        self.reports = storage.BlobContainer(
            f"{name}-{REPORTS_CONTAINER}", container_name=REPORTS_CONTAINER, account_name=self.account.name,
            resource_group_name=args.resource_group_name, public_access=storage.PublicAccess.NONE, opts=child)

        endpoints = self.account.primary_endpoints
        self.account_id = self.account.id
        self.account_name = self.account.name
        self.table_endpoint = endpoints.apply(lambda e: e.table.rstrip("/"))
        self.reports_container_id = self.reports.id
        self.reports_container_url = endpoints.apply(lambda e: e.blob.rstrip("/") + "/" + REPORTS_CONTAINER)
        self.register_outputs({
            "account_id": self.account_id,
            "account_name": self.account_name,
            "table_endpoint": self.table_endpoint,
            "reports_container_id": self.reports_container_id,
            "reports_container_url": self.reports_container_url,
        })


@dataclass(frozen=True)
class AgentRegistryArgs:
    environment: str
    location: str
    registry_name: str
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]

    def validate(self) -> None:
        check_environment(self.environment)
        check_registry_name(self.registry_name)


class AgentRegistry(pulumi.ComponentResource):
    """The registry the agent image is pushed to, and the identity agent jobs pull it with.

    No admin user (no registry password exists); jobs authenticate with a user-assigned managed
    identity that holds AcrPull on this registry and nothing else.
    """

    def __init__(self, name: str, args: AgentRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:platform:AgentRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=args.registry_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=containerregistry.SkuArgs(name=containerregistry.SkuName.BASIC),
            admin_user_enabled=False,
            opts=child)
        self.pull_identity = managedidentity.UserAssignedIdentity(
            f"{name}-pull-identity",
            resource_name_=f"haymaker-{args.environment}-agent-pull",
            resource_group_name=args.resource_group_name,
            location=args.location,
            opts=child)
        self.pull_grant = grant(
            f"{name}-acrpull", role="AcrPull", scope=self.registry.id,
            principal_id=self.pull_identity.principal_id, subscription_id=args.subscription_id,
            purpose=f"{args.environment} agent image pull", parent=self)

        self.registry_id = self.registry.id
        self.login_server = self.registry.login_server
        self.pull_identity_id = self.pull_identity.id
        self.pull_identity_client_id = self.pull_identity.client_id
        self.register_outputs({
            "registry_id": self.registry_id,
            "login_server": self.login_server,
            "pull_identity_id": self.pull_identity_id,
            "pull_identity_client_id": self.pull_identity_client_id,
        })


@dataclass(frozen=True)
class ActivityLogExportArgs:
    environment: str
    workspace_id: pulumi.Input[str]
    categories: tuple[str, ...] = ACTIVITY_LOG_CATEGORIES

    def validate(self) -> None:
        check_environment(self.environment)
        unknown = [c for c in self.categories if c not in ALL_ACTIVITY_LOG_CATEGORIES]
        if unknown or not self.categories:
            raise InvalidInput(f"Activity Log categories {list(self.categories)!r}: use some of "
                               f"{', '.join(ALL_ACTIVITY_LOG_CATEGORIES)}")


def activity_log_setting_name(environment: str) -> str:
    return f"haymaker-{environment}-activity-log"


class ActivityLogExport(pulumi.ComponentResource):
    """A diagnostic setting at subscription scope that sends the Activity Log to the workspace.

    The subscription is the provider's (the one the platform is deployed to); creating it needs
    Microsoft.Insights/diagnosticSettings/write on the subscription, which the platform deployer has.
    A subscription holds at most five diagnostic settings: each environment deployed to it uses one.
    """

    def __init__(self, name: str, args: ActivityLogExportArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:platform:ActivityLogExport", name, None, opts)
        self.setting = monitor.SubscriptionDiagnosticSetting(
            f"{name}-setting",
            name=activity_log_setting_name(args.environment),
            workspace_id=args.workspace_id,
            logs=[monitor.SubscriptionLogSettingsArgs(category=c, enabled=True) for c in args.categories],
            opts=pulumi.ResourceOptions(parent=self))
        self.setting_id = self.setting.id
        self.register_outputs({"setting_id": self.setting_id})
