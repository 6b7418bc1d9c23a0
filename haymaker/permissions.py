"""The permission table: every operation a run's lifecycle performs, the permission it needs, and the
platform grant that covers it.

Operations come from three places: the resource types the run program declares (Pulumi creates and
deletes them with the deployer's credential), the adapter calls of ``up``/``down``/``reap``/``doctor``
(as HTTP method and path, so a recorded request can be tied to its row with ``match_request``), and
the ledger, reports and image pushes. Grants are read from the platform program's declarations: the
deployer's role assignments (with their ABAC condition) and Graph app roles, and for each Graph
identity its Graph app roles and federated credentials. ``check`` says what a run needs that the
platform does not grant, and what the platform grants the deployer that nothing needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from components.roles import BUILTIN_ROLES

DEPLOYER = "deployer"  # the run deployer (haymaker/trust.py)
REAPER = "reaper"  # the reaper: the answer keys of ended runs (its teardowns are the deployer's rows)
PUBLISHER = "image-publisher"
GRAPH_IDENTITY = "graph-identity"  # the platform identity a Graph scenario borrows (components/graphidentity.py)
ACTION, DATA_ACTION, GRAPH, FEDERATION = "action", "dataAction", "graph", "federation"
# A Microsoft Entra role scoped to HayMaker's administrative unit: assigned once by a person (no identity a
# workflow can obtain may assign roles), so it is a human step of the bootstrap, never a platform grant.
DIRECTORY_ROLE = "directoryRole"
GROUPS_ADMINISTRATOR = "Groups Administrator"


# --- built-in role definitions ------------------------------------------------------------------------
# Actions, NotActions and DataActions as published in Microsoft's built-in roles reference
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles; generated pages
# built-in-roles/privileged.md, general.md, storage.md, security.md, monitor.md and containers.md of
# MicrosoftDocs/azure-docs, 2026-07-01). HayMaker's own custom roles are built in haymaker/trust.py.

@dataclass(frozen=True)
class RoleDefinition:
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


ROLE_DEFINITIONS: dict[str, RoleDefinition] = {
    "Contributor": RoleDefinition(
        actions=("*",),
        not_actions=("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                     "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
                     "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
                     "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
                     "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
                     "Microsoft.Subscription/cancel/action", "Microsoft.Subscription/enable/action")),
    "Role Based Access Control Administrator": RoleDefinition(
        actions=("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete",
                 "*/read", "Microsoft.Support/*")),
    "Storage Table Data Contributor": RoleDefinition(
        actions=("Microsoft.Storage/storageAccounts/tableServices/tables/read",
                 "Microsoft.Storage/storageAccounts/tableServices/tables/write",
                 "Microsoft.Storage/storageAccounts/tableServices/tables/delete"),
        data_actions=("Microsoft.Storage/storageAccounts/tableServices/tables/entities/read",
                      "Microsoft.Storage/storageAccounts/tableServices/tables/entities/write",
                      "Microsoft.Storage/storageAccounts/tableServices/tables/entities/delete",
                      "Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action",
                      "Microsoft.Storage/storageAccounts/tableServices/tables/entities/update/action")),
    "Storage Blob Data Contributor": RoleDefinition(
        actions=("Microsoft.Storage/storageAccounts/blobServices/containers/delete",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/write",
                 "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
                      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
                      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action")),
    "AcrPush": RoleDefinition(
        actions=("Microsoft.ContainerRegistry/registries/pull/read",
                 "Microsoft.ContainerRegistry/registries/push/write")),
    "AcrPull": RoleDefinition(actions=("Microsoft.ContainerRegistry/registries/pull/read",)),
    "Owner": RoleDefinition(actions=("*",)),
    "User Access Administrator": RoleDefinition(actions=("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*")),
    "Reader": RoleDefinition(actions=("*/read",)),
    "Log Analytics Reader": RoleDefinition(
        actions=("*/read", "Microsoft.OperationalInsights/workspaces/analytics/query/action",
                 "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*"),
        not_actions=("Microsoft.OperationalInsights/workspaces/sharedKeys/read",)),
    "Storage Blob Data Reader": RoleDefinition(
        actions=("Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",)),
    "Key Vault Crypto User": RoleDefinition(
        data_actions=("Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/update/action",
                      "Microsoft.KeyVault/vaults/keys/backup/action", "Microsoft.KeyVault/vaults/keys/encrypt/action",
                      "Microsoft.KeyVault/vaults/keys/decrypt/action", "Microsoft.KeyVault/vaults/keys/wrap/action",
                      "Microsoft.KeyVault/vaults/keys/unwrap/action", "Microsoft.KeyVault/vaults/keys/sign/action",
                      "Microsoft.KeyVault/vaults/keys/verify/action")),
}


def _pattern(text: str) -> re.Pattern:
    """Azure action patterns: ``*`` matches anything, '/' included; case does not matter."""
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.IGNORECASE)


def role_allows(role: RoleDefinition, permission: str, kind: str) -> bool:
    allowed, denied = ((role.actions, role.not_actions) if kind == ACTION
                       else (role.data_actions, role.not_data_actions))
    return (any(_pattern(a).fullmatch(permission) for a in allowed)
            and not any(_pattern(d).fullmatch(permission) for d in denied))


# --- the table ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Need:
    permission: str  # ARM action or data action, Graph application permission, or "deployer-subjects"
    kind: str = ACTION
    scope: str = "subscription"  # a scope name, made concrete by ``Scopes``
    # Role definition GUIDs a role assignment write/delete hands out: an ABAC condition must allow them.
    assigns_roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Operation:
    key: str
    what: str
    needs: tuple[Need, ...]
    principal: str = DEPLOYER
    api: str | None = None  # arm | graph | table | blob | loganalytics: where ``method`` and ``path`` are sent
    method: str | None = None
    path: str | None = None  # template: {name} is one segment, {resource} one or more, {any} zero or more
    objects: str | None = None  # Graph identity rows: the kind of directory object they concern
    supported: bool = True  # False: no application permission allows it (written down, never granted)
    planned: bool = False  # granted for a caller that is not written yet
    note: str = ""

    def matches(self, method: str, path: str) -> bool:
        return (self.method is not None and self.method == method.upper()
                and _path_regex(self.path).fullmatch(path.split("?", 1)[0].rstrip("/")) is not None)


def _path_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{[a-z_]+\})", template)
    wild = {"{resource}": ".+", "{any}": ".*"}
    body = "".join(wild.get(p, "[^/]+") if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body, re.IGNORECASE)


def _arm(action: str, scope: str = "subscription") -> Need:
    return Need(action, ACTION, scope)


def _graph(permission: str) -> Need:
    return Need(permission, GRAPH)


OWNED_BY = "Application.ReadWrite.OwnedBy"
READ_APPS = "Application.Read.All"
ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"

# What Pulumi does with the deployer's credential for each type the run program declares (create and
# delete). Completeness is tested by evaluating the run program for every scenario of the catalog.
PROGRAM_RESOURCES: dict[str, tuple[Need, ...]] = {
    "azure-native:resources:ResourceGroup": (
        _arm("Microsoft.Resources/subscriptions/resourceGroups/write", "agent-group"),
        _arm("Microsoft.Resources/subscriptions/resourceGroups/delete", "agent-group"),
        _arm("Microsoft.Resources/subscriptions/resourceGroups/write", "run-group"),
        _arm("Microsoft.Resources/subscriptions/resourceGroups/delete", "run-group")),
    "azure-native:authorization:RoleAssignment": (
        _arm(ROLE_ASSIGNMENT_WRITE, "agent-group"), _arm(ROLE_ASSIGNMENT_DELETE, "agent-group")),
    "azure-native:app:Job": (
        _arm("Microsoft.App/jobs/write", "run-group"), _arm("Microsoft.App/jobs/delete", "run-group"),
        _arm("Microsoft.App/managedEnvironments/join/action", "managed-environment"),
        _arm("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", "pull-identity"),
        _arm("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", "graph-identity")),
    "azuread:index/application:Application": (_graph(OWNED_BY),),
    "azuread:index/servicePrincipal:ServicePrincipal": (_graph(OWNED_BY),),
    "azuread:index/applicationPassword:ApplicationPassword": (_graph(OWNED_BY),),
}
# Not in the table: the StackReference to the platform (a read of the Pulumi backend, whose access is
# set up with it, docs/operations.md) and getClientConfig (no call to Azure).

# What only `up` does (create, attach, start): the reaper, which only tears runs down, holds none of it.
CREATES = frozenset({"Microsoft.Resources/subscriptions/resourceGroups/write", "Microsoft.App/jobs/write",
                     "Microsoft.App/managedEnvironments/join/action",
                     "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", "Microsoft.App/jobs/start/action",
                     ROLE_ASSIGNMENT_WRITE})

# What the platform deployer does with its credential for each type the platform program declares
# (completeness is tested by evaluating the platform program). Its refreshes and previews read what
# they declared (``*/read``). Role assignment writes hand out exactly the roles the platform grants.
PLATFORM_RESOURCES: dict[str, tuple[Need, ...]] = {
    "azure-native:resources:ResourceGroup": (
        _arm("Microsoft.Resources/subscriptions/resourceGroups/write"),
        _arm("Microsoft.Resources/subscriptions/resourceGroups/delete")),
    "azure-native:authorization:ManagementLockAtResourceGroupLevel": (
        _arm("Microsoft.Authorization/locks/write"), _arm("Microsoft.Authorization/locks/delete")),
    "azure-native:operationalinsights:Workspace": (
        _arm("Microsoft.OperationalInsights/workspaces/write"), _arm("Microsoft.OperationalInsights/workspaces/delete"),
        _arm("Microsoft.OperationalInsights/workspaces/sharedKeys/action")),  # getSharedKeys, for the environment
    "azure-native:app:ManagedEnvironment": (
        _arm("Microsoft.App/managedEnvironments/write"), _arm("Microsoft.App/managedEnvironments/delete")),
    "azure-native:storage:StorageAccount": (
        _arm("Microsoft.Storage/storageAccounts/write"), _arm("Microsoft.Storage/storageAccounts/delete")),
    "azure-native:storage:Table": (
        _arm("Microsoft.Storage/storageAccounts/tableServices/tables/write"),
        _arm("Microsoft.Storage/storageAccounts/tableServices/tables/delete")),
    "azure-native:storage:BlobContainer": (
        _arm("Microsoft.Storage/storageAccounts/blobServices/containers/write"),
        _arm("Microsoft.Storage/storageAccounts/blobServices/containers/delete")),
    "azure-native:containerregistry:Registry": (
        _arm("Microsoft.ContainerRegistry/registries/write"), _arm("Microsoft.ContainerRegistry/registries/delete")),
    "azure-native:managedidentity:UserAssignedIdentity": (
        _arm("Microsoft.ManagedIdentity/userAssignedIdentities/write"),
        _arm("Microsoft.ManagedIdentity/userAssignedIdentities/delete")),
    "azure-native:managedidentity:FederatedIdentityCredential": (
        _arm("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"),
        _arm("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete")),
    "azure-native:authorization:RoleAssignment": (_arm(ROLE_ASSIGNMENT_WRITE), _arm(ROLE_ASSIGNMENT_DELETE)),
    "azure-native:monitor:SubscriptionDiagnosticSetting": (
        _arm("Microsoft.Insights/diagnosticSettings/write"), _arm("Microsoft.Insights/diagnosticSettings/delete")),
}
PLATFORM_READS = (_arm("*/read"),)

RESOURCE_GRAPH_NOTE = "Resource Graph returns only what the caller may read"
_SUB = "/subscriptions/{sub}"
_RG = _SUB + "/resourceGroups/{rg}"

# The adapter calls of the lifecycle (haymaker/azure.py), as the lead's plan lists them.
ADAPTER_CALLS: tuple[Operation, ...] = (
    Operation("subscription.get", "tenant check", (_arm("Microsoft.Resources/subscriptions/read"),),
              api="arm", method="GET", path=_SUB),
    Operation("resource-graph.query", "resources and groups tagged with the run",
              (_arm("Microsoft.ResourceGraph/resources/read"), _arm("*/read")), api="arm", method="POST",
              path="/providers/Microsoft.ResourceGraph/resources", note=RESOURCE_GRAPH_NOTE),
    Operation("resource-groups.list", "groups tagged with the run",
              (_arm("Microsoft.Resources/subscriptions/resourceGroups/read"),), api="arm", method="GET",
              path=_SUB + "/resourcegroups"),
    Operation("resource-group.get", "direct read: is the group gone",
              (_arm("Microsoft.Resources/subscriptions/resourceGroups/read", "agent-group"),), api="arm",
              method="GET", path=_RG),
    Operation("resource-group.delete", "delete a leftover group, and everything in it",
              (_arm("Microsoft.Resources/subscriptions/resourceGroups/delete", "agent-group"),), api="arm",
              method="DELETE", path=_RG, note="ARM authorizes the group's delete, then removes what is in it"),
    Operation("operation.poll", "poll a long-running delete", (), api="arm", method="GET",
              path=_SUB + "{any}/operation{kind}/{id}",
              note="the Location/Azure-AsyncOperation URL ARM returned; authorized with the request that started it"),
    Operation("provider.get", "api versions of a resource type",
              (_arm("Microsoft.Resources/subscriptions/providers/read"),), api="arm", method="GET",
              path=_SUB + "/providers/{namespace}"),
    Operation("job.executions", "has an agent job started",
              (_arm("Microsoft.App/jobs/executions/read", "run-group"),), api="arm", method="GET",
              path=_RG + "/providers/Microsoft.App/jobs/{job}/executions"),
    Operation("job.start", "start an agent job whose minute passed during a slow deploy",
              (_arm("Microsoft.App/jobs/start/action", "run-group"),), api="arm", method="POST",
              path=_RG + "/providers/Microsoft.App/jobs/{job}/start"),
    Operation("deleted-vaults.list", "the run's soft-deleted Key Vaults",
              (_arm("Microsoft.KeyVault/deletedVaults/read"),), api="arm", method="GET",
              path=_SUB + "/providers/Microsoft.KeyVault/deletedVaults"),
    Operation("deleted-vault.get", "direct read: is the soft-deleted Key Vault purged",
              (_arm("Microsoft.KeyVault/locations/deletedVaults/read"),), api="arm", method="GET",
              path=_SUB + "/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}"),
    Operation("deleted-vault.purge", "purge a soft-deleted Key Vault (subscription scope: agents cannot)",
              (_arm("Microsoft.KeyVault/locations/deletedVaults/purge/action"),), api="arm", method="POST",
              path=_SUB + "/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}/purge"),
    Operation("deleted-accounts.list", "the run's soft-deleted Cognitive Services accounts",
              (_arm("Microsoft.CognitiveServices/deletedAccounts/read"),), api="arm", method="GET",
              path=_SUB + "/providers/Microsoft.CognitiveServices/deletedAccounts"),
    Operation("deleted-account.get", "direct read: is the soft-deleted account purged",
              (_arm("Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/read"),), api="arm",
              method="GET", path=_SUB + "/providers/Microsoft.CognitiveServices/locations/{location}/"
                                        "resourceGroups/{rg}/deletedAccounts/{name}"),
    Operation("deleted-account.purge", "purge a soft-deleted Cognitive Services account (subscription scope)",
              (_arm("Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete"),), api="arm",
              method="DELETE", path=_SUB + "/providers/Microsoft.CognitiveServices/locations/{location}/"
                                           "resourceGroups/{rg}/deletedAccounts/{name}"),
    Operation("role-assignments.list", "doctor: the deployer's RBAC rights",
              (_arm("Microsoft.Authorization/roleAssignments/read"),), api="arm", method="GET",
              path=_SUB + "/providers/Microsoft.Authorization/roleAssignments"),
    Operation("role-definition.get", "doctor: the name of a role the deployer holds (its own custom role)",
              (_arm("Microsoft.Authorization/roleDefinitions/read"),), api="arm", method="GET",
              path=_SUB + "/providers/Microsoft.Authorization/roleDefinitions/{id}"),
    # After the specific rows: any other resource id in a run's group is a loose resource.
    Operation("resource.get", "direct read: is a loose resource gone", (Need("{type}/read", ACTION, "agent-group"),),
              api="arm", method="GET", path=_RG + "/providers/{resource}"),
    Operation("resource.delete", "delete a loose leftover resource", (Need("{type}/delete", ACTION, "agent-group"),),
              api="arm", method="DELETE", path=_RG + "/providers/{resource}"),
    # Microsoft Graph, as the deployer, read-only: before a run borrows a Graph identity, its app roles are
    # verified (a person grants them once; haymaker/grants.py), against Microsoft Graph's own service principal.
    Operation("grants.graph-service-principal", "Microsoft Graph's service principal (the resource of app roles)",
              (_graph(READ_APPS),), api="graph", method="GET", path="/servicePrincipals(appId='{app}')"),
    Operation("grants.app-role-assignments", "the app roles a borrowed identity holds",
              (_graph(READ_APPS),), api="graph", method="GET", path="/servicePrincipals/{id}/appRoleAssignments"),
    # Microsoft Graph, as the deployer: the agent applications the run program created (it owns them).
    Operation("applications.list", "the run's agent applications", (_graph(OWNED_BY),), api="graph",
              method="GET", path="/applications", note="lists what the deployer owns"),
    Operation("application.get", "direct read: is the application gone", (_graph(OWNED_BY),), api="graph",
              method="GET", path="/applications/{id}"),
    Operation("application.delete", "delete an agent application", (_graph(OWNED_BY),), api="graph",
              method="DELETE", path="/applications/{id}"),
    Operation("application.owners", "is an application named for the run the deployer's (its owners)",
              (_graph(READ_APPS),), api="graph", method="GET", path="/applications/{id}/owners"),
    Operation("service-principals.list", "the run's agent service principals", (_graph(OWNED_BY),), api="graph",
              method="GET", path="/servicePrincipals"),
    Operation("service-principal.get", "direct read: is the service principal gone", (_graph(OWNED_BY),),
              api="graph", method="GET", path="/servicePrincipals/{id}"),
    Operation("service-principal.owners", "is a service principal named for the run the deployer's (its owners)",
              (_graph(READ_APPS),), api="graph", method="GET", path="/servicePrincipals/{id}/owners"),
    Operation("service-principal.delete", "delete an agent service principal", (_graph(OWNED_BY),), api="graph",
              method="DELETE", path="/servicePrincipals/{id}"),
    Operation("deleted-applications.list", "the run's applications in deleted items", (_graph(READ_APPS),),
              api="graph", method="GET", path="/directory/deletedItems/microsoft.graph.application"),
    Operation("deleted-service-principals.list", "the run's service principals in deleted items",
              (_graph(READ_APPS),), api="graph", method="GET",
              path="/directory/deletedItems/microsoft.graph.servicePrincipal"),
    Operation("deleted-item.get", "direct read: is the deleted application or service principal purged",
              (_graph(READ_APPS),), api="graph", method="GET", path="/directory/deletedItems/{id}"),
    Operation("deleted-item.purge", "purge an application or service principal from deleted items",
              (_graph(OWNED_BY),), api="graph", method="DELETE", path="/directory/deletedItems/{id}"),
)

# Microsoft Graph, as a Graph scenario's borrowed identity (teardown signs in with the deployer's GitHub
# token, trusted by the identity's federated credentials): the directory objects its agent created.
_BORROW = Need("deployer-subjects", FEDERATION)
IDENTITY_CALLS: tuple[Operation, ...] = (
    Operation("identity.groups.list", "the run's groups", (_BORROW, _graph("Group.Read.All")),
              principal=GRAPH_IDENTITY, objects="group", api="graph", method="GET", path="/groups"),
    Operation("identity.group.get", "direct read: is the group gone", (_BORROW, _graph("Group.Read.All")),
              principal=GRAPH_IDENTITY, objects="group", api="graph", method="GET", path="/groups/{id}"),
    Operation("identity.group.owners", "is a group named for the run the identity's (its owners)",
              (_BORROW, _graph("Group.Read.All")), principal=GRAPH_IDENTITY, objects="group", api="graph",
              method="GET", path="/groups/{id}/owners"),
    Operation("identity.group.delete", "delete a group the agent created",
              (_BORROW, Need(GROUPS_ADMINISTRATOR, DIRECTORY_ROLE, "haymaker-admin-unit")),
              principal=GRAPH_IDENTITY, objects="group", api="graph", method="DELETE", path="/groups/{id}",
              note="deleting a group takes Group.ReadWrite.All (Group.Create cannot delete, Graph permissions "
                   "reference), which no HayMaker identity holds: the scenario creates its groups in HayMaker's "
                   "administrative unit (POST /directory/administrativeUnits/{id}/members, Group.Create and "
                   "AdministrativeUnit.Read.All) and the identity, Groups Administrator of that unit only, deletes "
                   "them; the teardown deletes only those it owns (owners@odata.bind = the agent)"),
    Operation("identity.deleted-groups.list", "the run's groups in deleted items", (_BORROW, _graph("Group.Read.All")),
              principal=GRAPH_IDENTITY, objects="group", api="graph", method="GET",
              path="/directory/deletedItems/microsoft.graph.group"),
    Operation("identity.deleted-group.purge", "purge a group from deleted items", (), principal=GRAPH_IDENTITY,
              objects="group", api="graph", method="DELETE", path="/directory/deletedItems/{id}", supported=False,
              note="no application permission may permanently delete a group: deleted groups stay 30 days"),
    # Applications and service principals an agent created as its identity (identity-01, identity-04):
    # reads with Application.Read.All, deletes and purges as their owner (Graph v1.0 reference, least privileged).
    Operation("identity.applications.list", "the run's applications the agent created",
              (_BORROW, _graph(READ_APPS)), principal=GRAPH_IDENTITY, objects="application",
              api="graph", method="GET", path="/applications"),
    Operation("identity.application.get", "direct read: is the application gone", (_BORROW, _graph(READ_APPS)),
              principal=GRAPH_IDENTITY, objects="application", api="graph", method="GET", path="/applications/{id}"),
    Operation("identity.application.owners", "is an application named for the run the identity's (its owners)",
              (_BORROW, _graph(READ_APPS)), principal=GRAPH_IDENTITY, objects="application", api="graph",
              method="GET", path="/applications/{id}/owners"),
    Operation("identity.application.delete", "delete an application the agent created", (_BORROW, _graph(OWNED_BY)),
              principal=GRAPH_IDENTITY, objects="application", api="graph", method="DELETE",
              path="/applications/{id}", note="the creator owns it"),
    Operation("identity.service-principals.list", "the service principals the agent created",
              (_BORROW, _graph(READ_APPS)), principal=GRAPH_IDENTITY, objects="application",
              api="graph", method="GET", path="/servicePrincipals"),
    Operation("identity.service-principal.get", "direct read: is the service principal gone",
              (_BORROW, _graph(READ_APPS)), principal=GRAPH_IDENTITY, objects="application", api="graph",
              method="GET", path="/servicePrincipals/{id}"),
    Operation("identity.service-principal.owners", "is a service principal named for the run the identity's",
              (_BORROW, _graph(READ_APPS)), principal=GRAPH_IDENTITY, objects="application", api="graph",
              method="GET", path="/servicePrincipals/{id}/owners"),
    Operation("identity.service-principal.delete", "delete a service principal the agent created",
              (_BORROW, _graph(OWNED_BY)), principal=GRAPH_IDENTITY, objects="application", api="graph",
              method="DELETE", path="/servicePrincipals/{id}", note="the creator owns it"),
    Operation("identity.deleted-applications.list", "its applications in deleted items", (_BORROW, _graph(READ_APPS)),
              principal=GRAPH_IDENTITY, objects="application", api="graph", method="GET",
              path="/directory/deletedItems/microsoft.graph.application"),
    Operation("identity.deleted-service-principals.list", "its service principals in deleted items",
              (_BORROW, _graph(READ_APPS)), principal=GRAPH_IDENTITY, objects="application", api="graph",
              method="GET", path="/directory/deletedItems/microsoft.graph.servicePrincipal"),
    Operation("identity.deleted-item.get", "direct read: is its deleted application or service principal purged",
              (_BORROW, _graph(READ_APPS)), principal=GRAPH_IDENTITY, objects="application", api="graph",
              method="GET", path="/directory/deletedItems/{id}"),
    Operation("identity.deleted-item.purge", "purge its application or service principal from deleted items",
              (_BORROW, _graph(OWNED_BY)), principal=GRAPH_IDENTITY, objects="application", api="graph",
              method="DELETE", path="/directory/deletedItems/{id}"),
)

_ENTITIES = "Microsoft.Storage/storageAccounts/tableServices/tables/entities"
# The ledger (haymaker/ledger.py, Entra auth only), the reports container and the agent image.
DATA_CALLS: tuple[Operation, ...] = (
    Operation("ledger.create-table", "the first write to a new ledger creates its tables",
              (_arm("Microsoft.Storage/storageAccounts/tableServices/tables/write", "ledger-tables"),),
              api="table", method="POST", path="/Tables"),
    Operation("ledger.upsert", "upsert runs, agents, events (one entity or a batch)",
              (Need(_ENTITIES + "/write", DATA_ACTION, "ledger-tables"),), api="table", method="POST",
              path="/$batch"),
    Operation("ledger.update", "replace a run entity (with its ETag) or upsert one",
              (Need(_ENTITIES + "/write", DATA_ACTION, "ledger-tables"),), api="table", method="PUT",
              path="/{entity}"),
    Operation("ledger.merge", "merge into a run entity", (Need(_ENTITIES + "/write", DATA_ACTION, "ledger-tables"),),
              api="table", method="MERGE", path="/{entity}"),
    Operation("ledger.query", "runs, agents, events, metrics",
              (Need(_ENTITIES + "/read", DATA_ACTION, "ledger-tables"),), api="table", method="GET",
              path="/{entity}"),
    Operation("reports.upload", "a run's answer key (`haymaker truth`) to the reports container",
              (Need("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write", DATA_ACTION, "reports"),),
              principal=REAPER, api="blob", method="PUT", path="/reports/{resource}"),
    Operation("logs.query", "the agents' lines, the Activity Log and the Entra audit log in the workspace "
                            "(`haymaker logs`, `truth`, `doctor`)",
              tuple(_arm(f"Microsoft.OperationalInsights/workspaces/{action}", "workspace") for action in (
                  "read", "query/read", "query/ContainerAppConsoleLogs_CL/read", "query/AzureActivity/read",
                  "query/AuditLogs/read")),
              principal=REAPER, api="loganalytics", method="POST", path="/v1/{resource}/query"),
    Operation("image.push", "the agent-image workflow pushes the agent image",
              (_arm("Microsoft.ContainerRegistry/registries/push/write", "registry"),
               _arm("Microsoft.ContainerRegistry/registries/pull/read", "registry")), principal=PUBLISHER),
)


def program_operations(declared: Iterable, catalog) -> list[Operation]:
    """One operation per resource type the run program declared (``declared``: mockrun records of a run
    naming every scenario), with the roles its role assignments hand out. Raises ``KeyError`` naming the
    types the table lacks."""
    custom = [d for d in declared if d.custom]
    missing = sorted({d.type for d in custom} - set(PROGRAM_RESOURCES))
    if missing:
        raise KeyError(f"the run program declares {', '.join(missing)}: add them to PROGRAM_RESOURCES")
    roles = frozenset(str(d.inputs.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower() for d in custom
                      if d.type == "azure-native:authorization:RoleAssignment")
    ops = []
    for token in sorted({d.type for d in custom}):
        needs = tuple(Need(n.permission, n.kind, n.scope, roles)
                      if n.permission in (ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE) else n
                      for n in PROGRAM_RESOURCES[token])
        ops.append(Operation(f"declare {token}", f"Pulumi creates and deletes {token}", needs))
    return ops + [_expand_types(op, catalog) for op in (*ADAPTER_CALLS, *IDENTITY_CALLS, *DATA_CALLS)]


def _expand_types(op: Operation, catalog) -> Operation:
    """A need on ``{type}`` stands for every resource type a scenario declares in ``services`` that the
    teardown can find by tag: extension resources (policy assignments) carry no tags and go with their group."""
    types = sorted({t for s in catalog.scenarios.values() for t in s.services
                    if not t.lower().startswith("microsoft.authorization/")})
    needs = []
    for n in op.needs:
        needs += [Need(n.permission.replace("{type}", t), n.kind, n.scope) for t in types] \
            if "{type}" in n.permission else [n]
    return Operation(**{**op.__dict__, "needs": tuple(needs)})


def match_request(method: str, path: str, *, principal: str | None = None, api: str | None = None,
                  objects: str | None = None) -> Operation | None:
    """The row a recorded HTTP request belongs to: first match by method and path (a Graph path with or
    without /v1.0), for the identity that sent it (None: any); ``objects`` tells apart purges of groups and apps."""
    path = re.sub(r"^/(v1\.0|beta)(?=/)", "", path)
    for op in (*ADAPTER_CALLS, *IDENTITY_CALLS, *DATA_CALLS):
        if ((principal is None or op.principal == principal) and (api is None or op.api == api)
                and (objects is None or op.objects in (None, objects)) and op.matches(method, path)):
            return op
    return None


# --- grants -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    principal: str  # "deployer" or "graph-identity:<scenario>:<slot>"
    kind: str  # role | graph | federation
    name: str  # role name (built-in or a custom role of the trust table), Graph permission, or federated subject
    scope: str = ""  # ARM id (roles)
    condition: str | None = None
    source: str = ""  # the platform resource, or the person's step, that grants it


APP_ROLE_ASSIGNMENT = "azuread:index/appRoleAssignment:AppRoleAssignment"
IDENTITY_NAME_RE = re.compile(r"^haymaker-[a-z0-9]+-graph-(?P<scenario>.+)-(?P<slot>\d+)$")


def _graph_identity_slots(declared) -> dict[str, str]:
    """principalId and resource name of each declared Graph identity -> ``graph-identity:<scenario>:<slot>``."""
    out = {}
    for d in declared:
        m = IDENTITY_NAME_RE.match(str(d.inputs.get("resourceName", ""))) \
            if d.type == "azure-native:managedidentity:UserAssignedIdentity" else None
        if m:
            out[d.outputs["principalId"]] = out[d.outputs["name"]] = f"{GRAPH_IDENTITY}:{m['scenario']}:{m['slot']}"
    return out


def platform_grants(declared: Iterable, object_ids: Mapping[str, str]) -> list[Grant]:
    """What the platform program declares for the run deployer, the reaper and the publisher (data roles, to
    ``object_ids``: principal -> object id) and for each Graph identity (its federated credentials)."""
    declared = list(declared)
    role_names = {r.guid.lower(): r.name for r in BUILTIN_ROLES.values()}
    slots = _graph_identity_slots(declared)
    principals = {**{oid: principal for principal, oid in object_ids.items()}, **slots}
    grants = []
    for d in declared:
        if d.type == "azure-native:authorization:RoleAssignment" and d.inputs["principalId"] in principals:
            grants.append(Grant(principals[d.inputs["principalId"]], "role",
                                role_names[d.inputs["roleDefinitionId"].rsplit("/", 1)[-1].lower()],
                                d.inputs["scope"], d.inputs.get("condition"), d.name))
        elif d.type == APP_ROLE_ASSIGNMENT:
            grants.append(Grant("(platform)", "graph", d.inputs.get("appRoleId", ""), source=d.name))
        elif d.type == "azure-native:managedidentity:FederatedIdentityCredential" \
                and d.inputs.get("resourceName") in slots:
            grants.append(Grant(slots[d.inputs["resourceName"]], "federation", d.inputs["subject"], source=d.name))
    return grants


def person_grants(table, declared: Iterable, subscription_id: str) -> list[Grant]:
    """What a person grants once, as the trust table says (haymaker/trust.py): the run deployer's custom role
    at the subscription (with its condition) and its Graph permissions, and each declared Graph identity's
    Graph permissions (`haymaker platform grants`)."""
    from haymaker import trust

    scope, grants = f"/subscriptions/{subscription_id}", []
    for principal, key in ((DEPLOYER, trust.RUN_DEPLOYER), (REAPER, trust.REAPER)):
        grants += [Grant(principal, "role", g.role, scope, g.condition, f"person: {g.role}") for g in table[key].roles
                   if g.granted_by == trust.PERSON and g.scope == trust.SUBSCRIPTION]
        grants += [Grant(principal, "graph", perm, source=f"person: {perm}") for perm in table[key].graph]
    rows = {i.scenario: i for i in table.of_kind(trust.GRAPH_IDENTITY)}
    for principal in sorted(set(_graph_identity_slots(list(declared)).values())):
        row = rows.get(principal.split(":")[1])
        grants += [Grant(principal, "graph", perm, source=f"person: {perm}") for perm in (row.graph if row else ())]
    return grants


def deployer_subjects(table, repository: str) -> set[str]:
    """The GitHub OIDC subjects the run deployer signs in with (the trust table's)."""
    from haymaker import trust

    return set(table[trust.RUN_DEPLOYER].subjects(repository))


# --- the check ----------------------------------------------------------------------------------------

@dataclass
class Scopes:
    """Scope names of the table made concrete: ARM ids from the platform's and a run's declarations."""

    ids: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, platform: Iterable, platform_outputs: Mapping, run: Iterable) -> "Scopes":
        platform, run = list(platform), list(run)

        def of_type(records, token):
            return [d for d in records if d.type == token]

        groups = of_type(run, "azure-native:resources:ResourceGroup")
        account = of_type(platform, "azure-native:storage:StorageAccount")[0].id
        tables = [f"{account}/tableServices/default/tables/{t.inputs['tableName']}"
                  for t in of_type(platform, "azure-native:storage:Table")]
        subscription = platform_outputs["managedEnvironmentId"].split("/resourceGroups/")[0]
        identities = [i["id"] for pool in platform_outputs.get("graphIdentities", {}).values()
                      for i in pool["identities"]]
        return cls({
            "subscription": [subscription],
            "agent-group": [g.id for g in groups if g.name != "run-rg"],
            "run-group": [g.id for g in groups if g.name == "run-rg"],
            "managed-environment": [platform_outputs["managedEnvironmentId"]],
            "pull-identity": [platform_outputs["agentPullIdentityId"]],
            "graph-identity": identities,
            "ledger-tables": tables,
            "reports": [c.id + "/blobs/report.json" for c in of_type(platform, "azure-native:storage:BlobContainer")],
            "workspace": [w.id for w in of_type(platform, "azure-native:operationalinsights:Workspace")],
            "registry": [r.id for r in of_type(platform, "azure-native:containerregistry:Registry")],
        })


def _within(resource_id: str, scope: str) -> bool:
    resource_id, scope = resource_id.lower().rstrip("/"), scope.lower().rstrip("/")
    return resource_id == scope or resource_id.startswith(scope + "/")


def condition_allows(condition: str | None, action: str, roles: frozenset[str]) -> bool:
    """Whether a role assignment condition lets ``action`` hand out ``roles`` (to service principals)."""
    from haymaker.trust import condition_allows as allows

    return allows(condition, action, roles)


def covers(grant: Grant, need: Need, target: str = "", definitions: Mapping[str, RoleDefinition] | None = None) -> bool:
    """Whether ``grant`` allows ``need`` on ``target``: an ARM id for roles, a subject for federation;
    ``definitions``: role definitions beyond the built-in ones (the trust table's custom roles)."""
    if need.kind == GRAPH:
        return grant.kind == "graph" and grant.name == need.permission
    if need.kind == FEDERATION:
        return grant.kind == "federation" and grant.name == target
    resource_id = target
    return (grant.kind == "role" and _within(resource_id, grant.scope)
            and role_allows({**ROLE_DEFINITIONS, **(definitions or {})}[grant.name], need.permission, need.kind)
            and condition_allows(grant.condition, need.permission, need.assigns_roles))


@dataclass
class Report:
    missing: list[str] = field(default_factory=list)  # needed, not granted
    unused: list[str] = field(default_factory=list)  # granted to the deployer, needed by nothing
    unsupported: list[str] = field(default_factory=list)  # no application permission exists for it
    human: list[str] = field(default_factory=list)  # one-time steps a person does (a role scoped to the unit)


def check(operations: list[Operation], grants: list[Grant], scopes: Scopes, *, subjects: set[str],
          created_objects: Mapping[str, set[str]], definitions: Mapping[str, RoleDefinition] | None = None) -> Report:
    """``created_objects``: per Graph scenario, the kinds of directory object its agent creates;
    ``definitions``: the custom roles grants may name."""
    report, used = Report(), set()
    for op in operations:
        if not op.supported:
            report.unsupported.append(f"{op.key}: {op.note}")
            continue
        if op.principal != GRAPH_IDENTITY:
            holders = {op.principal: [g for g in grants if g.principal == op.principal]}
        else:
            holders = {g.principal: [] for g in grants if g.principal.startswith(GRAPH_IDENTITY + ":")
                       and op.objects in created_objects.get(g.principal.split(":")[1], set())}
            for g in grants:
                if g.principal in holders:
                    holders[g.principal].append(g)
        for principal, held in sorted(holders.items()):
            for need in op.needs:
                if need.kind == DIRECTORY_ROLE:  # a person's one-time step: printed and verified, not granted
                    report.human.append(f"{op.key} ({principal}): {need.permission} of {need.scope}")
                    continue
                targets = (scopes.ids.get(need.scope, []) if need.kind in (ACTION, DATA_ACTION)
                           else sorted(subjects) if need.kind == FEDERATION else [""])
                if not targets:
                    report.missing.append(f"{op.key}: {need.permission} on {need.scope}: nothing to check it on")
                for target in targets:
                    covering = [g for g in held if covers(g, need, target, definitions)]
                    used.update(covering)
                    if not covering:
                        where = f" for {target}" if target else ""
                        report.missing.append(f"{op.key} ({principal}): needs {need.permission}{where}")
    report.unused = [f"{g.source}: {g.name}{' on ' + g.scope if g.scope else ''}"
                     for g in grants if g.principal == DEPLOYER and g not in used]
    return report


def created_directory_objects(scenario) -> set[str]:
    """The kinds of directory object a scenario's steps create (groups, applications)."""
    kinds = set()
    for steps in scenario.phases.values():
        for step in steps:
            words = step.run.split()
            in_unit = "/administrativeUnits/" in step.run and "#microsoft.graph.group" in step.run
            if words[1:4] == ["ad", "group", "create"] or ("rest" in words[1:2] and "post" in step.run.lower()
                                                           and ("/v1.0/groups" in step.run or in_unit)):
                kinds.add("group")
            if words[1:4] in (["ad", "app", "create"], ["ad", "sp", "create"]):
                kinds.add("application")
    return kinds
