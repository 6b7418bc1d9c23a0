"""DeploymentIdentity: the identity GitHub Actions deploys runs with, through OIDC.

An Entra application and its service principal with one federated identity credential per GitHub
Environment of this repository: no client secret exists, in GitHub or anywhere else. An application
rather than a user-assigned managed identity because its federated credentials live in Entra ID, out
of reach of its own Contributor role: a managed identity's credentials are an ARM child resource that
Contributor on the subscription could rewrite to trust any repository.

Its rights are what a run needs and no more:
- Contributor at the subscription: create the run's resource groups and agent jobs;
- Role Based Access Control Administrator at the subscription, *with a condition*: it may create and
  delete role assignments only of the non-privileged roles agents hold (components/roles.py), so it
  can never grant Owner, User Access Administrator or RBAC Administrator, to an agent or to itself;
- Storage Table Data Contributor on the ledger account, Storage Blob Data Contributor on the
  ``reports`` container (shared keys are off, so these are the only way in) and AcrPush on the
  agents' registry (the agent-image workflow pushes with it);
- Microsoft Graph ``Application.ReadWrite.OwnedBy``: create agent applications and manage (and purge)
  only the applications it owns. It does not own its own application (owners are the platform's
  deployer), so it cannot add a credential to itself. ``Application.Read.All``: list and read the
  directory's deleted applications and service principals, which teardown purges (the Graph reference
  names no narrower permission for these reads). Neither grants anything.

The platform stack itself is deployed by a more privileged identity (an operator, or a bootstrap
principal holding Owner or User Access Administrator on the subscription and, in Entra ID, the right
to grant application permissions, e.g. Privileged Role Administrator): granting these rights needs
more than they contain. That identity owns the deployer's application.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azuread as azuread

from components.platform import check_environment, grant
from components.roles import BUILTIN_ROLES, GRAPH_APP_ROLES
from haymaker.errors import InvalidInput

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
# OwnedBy: create the agents' applications and manage (and purge) only those. Read.All: list and read
# deleted items, for which the Graph reference names nothing narrower (neither can grant anything).
GRAPH_PERMISSIONS = {"owned-by": "Application.ReadWrite.OwnedBy", "read-apps": "Application.Read.All"}
RBAC_ADMIN = "Role Based Access Control Administrator"
MAX_CONDITION_LENGTH = 8192  # Azure refuses role assignment conditions over 8 KB


def assignable_role_guids() -> list[str]:
    """The roles the deployer may hand out: every non-privileged role of components/roles.py."""
    return sorted({r.guid.lower() for r in BUILTIN_ROLES.values() if not r.privileged})


def agent_roles_condition(guids: list[str]) -> str:
    """ABAC condition (version 2.0) that limits role assignment writes and deletes to ``guids``.

    Writes are checked against the request's role (``@Request``), deletes against the existing
    assignment's role (``@Resource``): every other action of the role is left unconditioned.
    """
    if not guids:
        raise InvalidInput("no assignable roles: the deployer's role assignment condition would allow none")
    ids = ", ".join(guids)

    def only(action: str, source: str) -> str:
        return (f"((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/{action}'}})) OR "
                f"({source}[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
                f"ForAnyOfAnyValues:GuidEquals {{{ids}}}))")

    return f"{only('write', '@Request')} AND {only('delete', '@Resource')}"


def github_subject(repository: str, environment: str) -> str:
    return f"repo:{repository}:environment:{environment}"


def github_branch_subject(repository: str, branch: str) -> str:
    """Workflows that name no GitHub Environment (the reaper, on a schedule on the default branch)."""
    return f"repo:{repository}:ref:refs/heads/{branch}"


@dataclass(frozen=True)
class DeploymentIdentityArgs:
    environment: str
    github_repository: str  # owner/repo
    github_environments: tuple[str, ...]  # GitHub Environments allowed to sign in
    subscription_id: pulumi.Input[str]
    owner_object_id: pulumi.Input[str]  # the platform's (more privileged) deployer
    graph_service_principal_id: pulumi.Input[str]
    ledger_account_id: pulumi.Input[str]
    reports_container_id: pulumi.Input[str]
    registry_id: pulumi.Input[str] | None = None
    # The reaper runs on a schedule on this branch with no GitHub Environment (a prod environment's
    # required reviewers would hold every reap): trust it too, or None to trust environments only.
    trusted_branch: str | None = "main"

    def validate(self) -> None:
        check_environment(self.environment)
        check_deployer_inputs(self.github_repository, self.github_environments)

    @property
    def condition(self) -> str:
        return agent_roles_condition(assignable_role_guids())


def check_deployer_inputs(github_repository: str, github_environments: tuple[str, ...]) -> None:
    """What the deployer's args must satisfy, checkable before anything is declared."""
    owner, _, repo = str(github_repository).partition("/")
    if not owner or not repo or "/" in repo:
        raise InvalidInput(f"GitHub repository {github_repository!r} is not owner/repo")
    if not github_environments:
        raise InvalidInput("the deployer needs at least one GitHub Environment to trust")
    for name in github_environments:
        if not name or ":" in name:
            raise InvalidInput(f"GitHub Environment {name!r} cannot appear in an OIDC subject")
    condition = agent_roles_condition(assignable_role_guids())
    if len(condition) > MAX_CONDITION_LENGTH:
        raise InvalidInput(f"the role assignment condition is {len(condition)} characters; Azure allows "
                           f"{MAX_CONDITION_LENGTH}: fewer roles in components/roles.py")


class DeploymentIdentity(pulumi.ComponentResource):
    def __init__(self, name: str, args: DeploymentIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:platform:DeploymentIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        env, sub = args.environment, args.subscription_id

        self.application = azuread.Application(
            f"{name}-app",
            display_name=f"haymaker-{env}-deployer",
            owners=[args.owner_object_id],
            notes=f"HayMaker {env}: GitHub Actions of {args.github_repository} deploy runs with it (OIDC, "
                  "no secret). Managed by the platform stack.",
            opts=child)
        self.service_principal = azuread.ServicePrincipal(
            f"{name}-sp", client_id=self.application.client_id, owners=[args.owner_object_id], opts=child)
        self.federated_credentials = [
            azuread.ApplicationFederatedIdentityCredential(
                f"{name}-github-{gh_env}",
                application_id=self.application.id,
                display_name=f"github-{gh_env}",
                description=f"GitHub Actions of {args.github_repository}, environment {gh_env}",
                issuer=GITHUB_ISSUER,
                subject=github_subject(args.github_repository, gh_env),
                audiences=[GITHUB_AUDIENCE],
                opts=child)
            for gh_env in args.github_environments
        ]
        if args.trusted_branch:
            self.federated_credentials.append(azuread.ApplicationFederatedIdentityCredential(
                f"{name}-github-branch-{args.trusted_branch}",
                application_id=self.application.id,
                display_name=f"github-branch-{args.trusted_branch}",
                description=f"GitHub Actions of {args.github_repository} on branch {args.trusted_branch} (the reaper)",
                issuer=GITHUB_ISSUER,
                subject=github_branch_subject(args.github_repository, args.trusted_branch),
                audiences=[GITHUB_AUDIENCE],
                opts=child))

        principal = self.service_principal.object_id
        subscription_scope = pulumi.Output.concat("/subscriptions/", sub)

        def give(role_name: str, role: str, scope, purpose: str, condition: str | None = None):
            return grant(f"{name}-{role_name}", role=role, scope=scope, principal_id=principal,
                         subscription_id=sub, purpose=f"{env} deployer {purpose}", parent=self, condition=condition)

        self.role_assignments = [
            give("contributor", "Contributor", subscription_scope, "resource groups and jobs"),
            give("rbac-admin", RBAC_ADMIN, subscription_scope, "agent role assignments", condition=args.condition),
            give("ledger-tables", "Storage Table Data Contributor", args.ledger_account_id, "ledger"),
            give("reports", "Storage Blob Data Contributor", args.reports_container_id, "reports"),
        ]
        if args.registry_id is not None:
            self.role_assignments.append(give("acrpush", "AcrPush", args.registry_id, "agent image push"))
        self.graph_permissions = [azuread.AppRoleAssignment(
            f"{name}-graph-{key}",
            app_role_id=GRAPH_APP_ROLES[permission],
            principal_object_id=principal,
            resource_object_id=args.graph_service_principal_id,
            opts=child) for key, permission in GRAPH_PERMISSIONS.items()]

        self.client_id = self.application.client_id
        self.service_principal_object_id = principal
        self.register_outputs({
            "client_id": self.client_id,
            "service_principal_object_id": self.service_principal_object_id,
        })
