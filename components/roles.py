"""Built-in Azure role definitions by name, and Microsoft Graph application permissions.

Role assignments need the role definition GUID, which is the same in every tenant for built-in
roles. Agents may hold only roles listed here with ``agent=True`` (never a ``privileged`` one); a
``sensitive`` role (data owner, identity management, policy, registry push) only when a scenario needs
it and the environment's policy allows it (``agent-sensitive-roles`` in policies/config.<env>.json).
The run deployer may assign exactly the roles the catalog uses (haymaker/trust.py), so adding a role to
a scenario changes its condition, which a person grants (``haymaker platform bootstrap --print``).
"""

from __future__ import annotations

from dataclasses import dataclass


DATA_OWNER, IDENTITY, POLICY, REGISTRY_PUSH = "data-owner", "identity-management", "policy", "registry-push"


@dataclass(frozen=True)
class BuiltinRole:
    name: str
    guid: str
    privileged: bool = False  # can grant access: never held by an agent, never assignable by a HayMaker identity
    sensitive: str = ""  # DATA_OWNER, IDENTITY, POLICY or REGISTRY_PUSH: an agent only where policy allows it
    agent: bool = True  # False: the platform's own grants only (an agent may not declare it)


_ROLES = [
    # Roles that can grant access or own everything: never for agents.
    BuiltinRole("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", privileged=True),
    BuiltinRole("User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", privileged=True),
    BuiltinRole("Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
                privileged=True),
    # General
    BuiltinRole("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
    BuiltinRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    # Compute, web, containers
    BuiltinRole("Virtual Machine Contributor", "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"),
    BuiltinRole("Website Contributor", "de139f84-1756-47ae-9be6-808fbbe84772"),
    BuiltinRole("Web Plan Contributor", "2cc479cb-7b4d-49a8-b449-8c00fd0f0a4b"),
    BuiltinRole("Azure Kubernetes Service Contributor Role", "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8"),
    BuiltinRole("Azure Kubernetes Service Cluster User Role", "4abbcc35-e782-43d8-92c5-2d3f1bd2253f"),
    BuiltinRole("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec", sensitive=REGISTRY_PUSH, agent=False),
    BuiltinRole("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d", agent=False),
    BuiltinRole("API Management Service Contributor", "312a565d-c81f-4fd8-895a-4e21e48d571c"),
    BuiltinRole("Logic App Contributor", "87a39d53-fc1b-424a-814c-f7e04687dc9e"),
    # Networking
    BuiltinRole("Network Contributor", "4d97b98b-1d4f-4787-a291-c67834d212e7"),
    BuiltinRole("DNS Zone Contributor", "befefa01-2a29-4197-83a8-272ff33ce314"),
    BuiltinRole("Private DNS Zone Contributor", "b12aa53e-6015-4669-85d0-8515ebb3ae7f"),
    # Storage
    BuiltinRole("Storage Account Contributor", "17d1049b-9a84-46fb-8f53-869881c3d3ab"),
    BuiltinRole("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
    BuiltinRole("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88"),
    BuiltinRole("Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"),
    # Databases
    BuiltinRole("SQL Server Contributor", "6d8ee4ec-f05a-4a1d-8b00-a9b17e38b437"),
    BuiltinRole("SQL DB Contributor", "9b7fa17d-e63e-47b0-bb0a-15c516ac86ec"),
    BuiltinRole("SQL Managed Instance Contributor", "4939a1f6-9ae0-4e48-a1e0-f2cbe897382d"),
    BuiltinRole("DocumentDB Account Contributor", "5bd9cd88-fe45-4216-938b-f97437e15450"),
    BuiltinRole("Redis Cache Contributor", "e0f68234-74aa-48ed-b826-c38b57376e17"),
    # Analytics and messaging
    BuiltinRole("Data Factory Contributor", "673868aa-7521-48a0-acc6-0f60742d39f5"),
    # Data owners of Event Hubs and Service Bus: no scenario needs them, so no agent may hold them.
    BuiltinRole("Azure Event Hubs Data Owner", "f526a384-b230-433a-b45c-95f59c4a2dec", sensitive=DATA_OWNER,
                agent=False),
    BuiltinRole("Azure Service Bus Data Owner", "090c5cfd-751d-490a-894a-3ce6f1109419", sensitive=DATA_OWNER,
                agent=False),
    # AI
    BuiltinRole("Cognitive Services Contributor", "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68"),
    BuiltinRole("Cognitive Services OpenAI Contributor", "a001fd3d-188f-4b5d-821b-7da978bf7442"),
    BuiltinRole("AzureML Data Scientist", "f6c7c914-8db3-469d-8ca1-694a8f32e121"),
    BuiltinRole("Search Service Contributor", "7ca78c08-252a-4471-8644-bb5ff32d4ba0"),
    # Monitoring
    BuiltinRole("Monitoring Contributor", "749f88d5-cbae-40b8-bcfc-e573ddc772fa"),
    BuiltinRole("Log Analytics Contributor", "92aaf0da-9dab-42b6-94a3-d43ce8d16293"),
    BuiltinRole("Log Analytics Reader", "73c42c96-874c-492b-b04d-ab87d138a893", agent=False),
    # Security and identity
    BuiltinRole("Key Vault Administrator", "00482a5a-887f-4fb3-b363-3b7fe8e74483", sensitive=DATA_OWNER),
    BuiltinRole("Key Vault Contributor", "f25e0fa2-a7c8-4377-a976-54943a77a395"),
    BuiltinRole("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
    BuiltinRole("Managed Identity Contributor", "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59", sensitive=IDENTITY),
    BuiltinRole("Managed Identity Operator", "f1a07417-d97a-45cb-824c-7a7467783830", sensitive=IDENTITY, agent=False),
    BuiltinRole("Security Reader", "39bc4728-0917-49c7-9d2c-d95423bc2eb4"),
    BuiltinRole("Resource Policy Contributor", "36243c78-bf99-498c-9df9-86d9f8d28608", sensitive=POLICY),
    # The state backend and its secrets key (granted by a person, haymaker/trust.py).
    BuiltinRole("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", agent=False),
    BuiltinRole("Key Vault Crypto User", "12338af0-0e69-4776-bea7-57ae8d297424", agent=False),
    # Hybrid and recovery
    BuiltinRole("Azure Connected Machine Onboarding", "b64e21ea-ac4e-4cdf-9dc9-5b892992bee7"),
    BuiltinRole("Azure Connected Machine Resource Administrator", "cd570a14-e51a-42ad-bac8-bafd67325302"),
    BuiltinRole("Site Recovery Contributor", "6670b86e-a3f7-4917-ac9b-5d6ab1be4567"),
    BuiltinRole("Backup Contributor", "5e467623-bb1f-42f4-a55d-6e525e11384b"),
]

BUILTIN_ROLES: dict[str, BuiltinRole] = {r.name: r for r in _ROLES}
PRIVILEGED_ROLE_GUIDS: frozenset[str] = frozenset(r.guid for r in _ROLES if r.privileged)
AGENT_ROLES: frozenset[str] = frozenset(r.name for r in _ROLES if r.agent and not r.privileged)

# Microsoft Graph application permissions (app role ids of the Microsoft Graph service principal).
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_APP_ROLES: dict[str, str] = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.OwnedBy": "18a4783c-866b-4cc7-a460-3d5e5662c884",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "Group.Create": "bf7b1a76-6e77-406b-b258-bf5c7720e98f",
    "Group.ReadWrite.All": "62a82d76-70ea-41e2-9197-370581804d09",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    # Creating a group in an administrative unit takes it beside Group.Create (administrativeunit-post-members).
    "AdministrativeUnit.Read.All": "134fd756-38ce-4afd-ba33-e9623dbe66c2",
}
# Permissions that let a holder grant itself (or anyone) more: never for any HayMaker identity. The
# platform's Graph identities can be borrowed by the run deployer, so their grants count as its own.
GRAPH_ESCALATION_ROLES: dict[str, str] = {
    "AppRoleAssignment.ReadWrite.All": "06b708a9-e830-4db3-a914-8e69da51d44f",
    "RoleManagement.ReadWrite.Directory": "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
    "Directory.ReadWrite.All": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
}


def role_guid(name: str) -> str:
    """GUID of a built-in role; KeyError names the role when it is unknown."""
    return BUILTIN_ROLES[name].guid
