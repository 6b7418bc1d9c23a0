"""ScenarioAgent: one scenario's sandbox, identity and agent job for one run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pulumi
import pulumi_azuread as azuread
from pulumi_azure_native import app, authorization, resources

from components.roles import BUILTIN_ROLES, GRAPH_APP_ROLES
from haymaker import naming
from haymaker.agent.config import LOGIN_MANAGED_IDENTITY, LOGIN_SERVICE_PRINCIPAL
from haymaker.errors import InvalidInput
from haymaker.runspec import MAX_DURATION_HOURS, MIN_DURATION_HOURS, check_run_id, iso

SECRET_NAME = "agent-client-secret"
MIN_WORKING_TIME = timedelta(minutes=15)  # between the agent's start and its cleanup
MAX_CPU = 2.0


@dataclass(frozen=True)
class BorrowedIdentity:
    """One of the platform's Graph identities, leased by this run (components/graphidentity.py)."""

    id: pulumi.Input[str]  # ARM id of the user-assigned identity
    client_id: pulumi.Input[str]
    principal_id: pulumi.Input[str]  # its service principal's object id


@dataclass(frozen=True)
class ScenarioAgentArgs:
    run_id: str
    environment: str
    scenario: str
    azure_roles: tuple[str, ...]
    location: str
    agent_image: str
    duration_hours: int
    expires_at: datetime
    start_at: datetime
    managed_environment_id: pulumi.Input[str]
    job_resource_group_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    owner_object_id: pulumi.Input[str]
    # Also owners of the agent's application: the environment's reaper, which tears runs down with its own
    # identity (Application.ReadWrite.OwnedBy deletes only what its holder owns; haymaker/trust.py).
    co_owner_object_ids: pulumi.Input[list] = ()
    graph_permissions: tuple[str, ...] = ()
    # Graph scenarios borrow a platform identity that holds their Graph roles; the run grants none.
    borrowed_identity: BorrowedIdentity | None = None
    cpu: float = 0.5
    memory: str = "1Gi"
    # The platform's user-assigned identity with AcrPull on the agents' registry: no registry password.
    pull_identity_id: pulumi.Input[str] | None = None
    registry_server: pulumi.Input[str] | None = None
    cleanup_buffer_minutes: int = 30
    credential_grace_minutes: int = 60
    # The scenario's own need (catalog: cleanup_buffer_minutes, at least its cleanup steps' limits).
    scenario_cleanup_minutes: int = 0
    # HayMaker's administrative unit, where Graph scenarios create their groups (${ADMIN_UNIT_ID}).
    admin_unit_id: str | None = None

    def validate(self) -> None:
        """Refuse bad args before any resource is declared."""
        check_run_id(self.run_id)
        if not MIN_DURATION_HOURS <= self.duration_hours <= MAX_DURATION_HOURS:
            raise InvalidInput(f"{self.scenario}: duration {self.duration_hours} h is outside "
                               f"{MIN_DURATION_HOURS}-{MAX_DURATION_HOURS} h")
        if not self.azure_roles:
            raise InvalidInput(f"{self.scenario}: an agent needs at least one Azure role")
        for role in self.azure_roles:
            known = BUILTIN_ROLES.get(role)
            if known is None:
                raise InvalidInput(f"{self.scenario}: unknown role {role!r}: use a role from components/roles.py")
            if known.privileged or not known.agent:
                raise InvalidInput(f"{self.scenario}: agents may not hold {role!r}: pick a narrower role")
        for perm in self.graph_permissions:
            if perm not in GRAPH_APP_ROLES:
                raise InvalidInput(f"{self.scenario}: unknown Graph permission {perm!r}")
        if self.graph_permissions and self.borrowed_identity is None:
            raise InvalidInput(f"{self.scenario}: Graph permissions need an identity borrowed from the platform "
                               "(graphIdentities): a run may not grant Graph permissions itself")
        if self.borrowed_identity is not None and not self.graph_permissions:
            raise InvalidInput(f"{self.scenario}: only Graph scenarios borrow a platform identity")
        if not 0 < self.cpu <= MAX_CPU:
            raise InvalidInput(f"{self.scenario}: cpu {self.cpu} is outside 0-{MAX_CPU}")
        if self.start_at >= self.expires_at:
            raise InvalidInput(f"{self.scenario}: the job would start after the run expires")
        working = self.expires_at - timedelta(minutes=self.agent_cleanup_buffer_minutes) - self.start_at
        if working < MIN_WORKING_TIME:
            raise InvalidInput(
                f"{self.scenario}: its cleanup takes {self.agent_cleanup_buffer_minutes} min before expiry, which "
                f"leaves {max(0, int(working.total_seconds() // 60))} min of work after the agent starts "
                f"(at least {int(MIN_WORKING_TIME.total_seconds() // 60)} needed): give the run a longer --duration "
                "or leave this scenario out")
        for name in (self.job_name,):
            if not naming.is_valid_job_name(name):
                raise InvalidInput(f"{self.scenario}: job name {name!r} breaks Container Apps naming rules")
        if (self.pull_identity_id is None) != (self.registry_server is None):
            raise InvalidInput(f"{self.scenario}: give both the registry server and its pull identity, or neither")
        if not naming.is_valid_resource_group_name(self.resource_group_name):
            raise InvalidInput(f"{self.scenario}: resource group name {self.resource_group_name!r} is invalid")

    @property
    def resource_group_name(self) -> str:
        return naming.resource_group_name(self.run_id, self.scenario)

    @property
    def job_name(self) -> str:
        return naming.job_name(self.run_id, self.scenario)

    @property
    def agent_cleanup_buffer_minutes(self) -> int:
        """When the agent starts cleaning up: the environment's buffer, or more when the scenario needs it."""
        return max(self.cleanup_buffer_minutes, self.scenario_cleanup_minutes)

    @property
    def replica_timeout_seconds(self) -> int:
        """Hard stop of the agent: its working hours plus the environment's cleanup buffer.

        A scenario's larger buffer moves its cleanup earlier; the agent still ends by ``expires_at``,
        well inside this timeout (the job starts after the run does), so the timeout, and with it
        the policy's ceiling and the cost estimate, stay the environment's."""
        return self.duration_hours * 3600 + self.cleanup_buffer_minutes * 60

    @property
    def credential_end(self) -> datetime:
        return self.expires_at + timedelta(minutes=self.credential_grace_minutes)

    @property
    def start_cron(self) -> str:
        """A schedule that fires once: at one pinned UTC minute of one day."""
        t = self.start_at
        return f"{t.minute} {t.hour} {t.day} {t.month} *"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class ScenarioAgent(pulumi.ComponentResource):
    def __init__(self, name: str, args: ScenarioAgentArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("haymaker:index:ScenarioAgent", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.resource_group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=args.resource_group_name,
            location=args.location,
            opts=child,
        )
        borrowed = args.borrowed_identity
        if borrowed is None:
            self._own_identity(name, args)
        else:
            self.application = self.service_principal = self.credential = None
            self.client_id, self.principal_id = borrowed.client_id, borrowed.principal_id
        self.role_assignments = [
            authorization.RoleAssignment(
                f"{name}-role-{_slug(role)}",
                role_assignment_name=naming.role_assignment_name(args.run_id, args.scenario, BUILTIN_ROLES[role].guid),
                scope=self.resource_group.id,
                principal_id=self.principal_id,
                # Set explicitly: ARM then skips the directory lookup that fails while a new SP replicates.
                principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=pulumi.Output.concat(
                    "/subscriptions/", args.subscription_id,
                    "/providers/Microsoft.Authorization/roleDefinitions/", BUILTIN_ROLES[role].guid),
                description=f"HayMaker {args.run_id} {args.scenario}",
                opts=child,
            )
            for role in args.azure_roles
        ]
        env = [
            app.EnvironmentVarArgs(name="HAYMAKER_RUN_ID", value=args.run_id),
            app.EnvironmentVarArgs(name="HAYMAKER_SCENARIO", value=args.scenario),
            app.EnvironmentVarArgs(name="HAYMAKER_EXPIRES_AT", value=iso(args.expires_at)),
            app.EnvironmentVarArgs(name="HAYMAKER_RESOURCE_GROUP", value=self.resource_group.name),
            app.EnvironmentVarArgs(name="HAYMAKER_LOCATION", value=args.location),
            app.EnvironmentVarArgs(name="HAYMAKER_CLEANUP_BUFFER_MINUTES", value=str(args.agent_cleanup_buffer_minutes)),
            app.EnvironmentVarArgs(name="AZURE_TENANT_ID", value=args.tenant_id),
            app.EnvironmentVarArgs(name="AZURE_SUBSCRIPTION_ID", value=args.subscription_id),
            app.EnvironmentVarArgs(name="AZURE_CLIENT_ID", value=self.client_id),
            app.EnvironmentVarArgs(name="HAYMAKER_AGENT_OBJECT_ID", value=self.principal_id),
        ]
        if args.admin_unit_id and borrowed is not None:
            env.append(app.EnvironmentVarArgs(name="HAYMAKER_ADMIN_UNIT_ID", value=args.admin_unit_id))
        if borrowed is None:
            env += [app.EnvironmentVarArgs(name="HAYMAKER_LOGIN", value=LOGIN_SERVICE_PRINCIPAL),
                    app.EnvironmentVarArgs(name="AZURE_CLIENT_SECRET", secret_ref=SECRET_NAME)]
        else:  # `az login --identity --client-id`: no secret exists
            env.append(app.EnvironmentVarArgs(name="HAYMAKER_LOGIN", value=LOGIN_MANAGED_IDENTITY))
        # A Job, not an App: an App would restart the agent when it exits. The job lives in the
        # run's control group, where the agent has no rights, so it cannot lift its own timeout.
        pull = args.pull_identity_id is not None
        identities = [i for i in (args.pull_identity_id, borrowed.id if borrowed else None) if i is not None]
        self.job = app.Job(
            f"{name}-job",
            job_name=args.job_name,
            identity=app.ManagedServiceIdentityArgs(
                type=app.ManagedServiceIdentityType.USER_ASSIGNED,
                user_assigned_identities=identities) if identities else None,
            resource_group_name=args.job_resource_group_name,
            location=args.location,
            environment_id=args.managed_environment_id,
            configuration=app.JobConfigurationArgs(
                trigger_type=app.TriggerType.SCHEDULE,
                schedule_trigger_config=app.JobConfigurationScheduleTriggerConfigArgs(
                    cron_expression=args.start_cron, parallelism=1, replica_completion_count=1),
                replica_timeout=args.replica_timeout_seconds,
                replica_retry_limit=1,
                secrets=[app.SecretArgs(name=SECRET_NAME, value=self.credential.value)] if borrowed is None else None,
                registries=[app.RegistryCredentialsArgs(server=args.registry_server, identity=args.pull_identity_id)]
                if pull else None,
            ),
            template=app.JobTemplateArgs(containers=[app.ContainerArgs(
                name="agent",
                image=args.agent_image,
                resources=app.ContainerResourcesArgs(cpu=args.cpu, memory=args.memory),
                env=env,
            )]),
            # The agent must hold its roles before its first step runs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.role_assignments),
        )

        self.resource_group_name = self.resource_group.name
        self.resource_group_id = self.resource_group.id
        self.service_principal_object_id = self.principal_id
        self.job_name = self.job.name
        self.job_id = self.job.id
        self.register_outputs({
            "resource_group_name": self.resource_group_name,
            "resource_group_id": self.resource_group_id,
            "client_id": self.client_id,
            "service_principal_object_id": self.service_principal_object_id,
            "job_name": self.job_name,
            "job_id": self.job_id,
        })

    def _own_identity(self, name: str, args: ScenarioAgentArgs) -> None:
        """The agent's own Entra application, service principal and run-scoped password."""
        child = pulumi.ResourceOptions(parent=self)
        display_name = naming.app_display_name(args.run_id, args.scenario)
        co_owners = args.co_owner_object_ids
        owners = pulumi.Output.all(args.owner_object_id, list(co_owners) if isinstance(co_owners, tuple) else co_owners).apply(
            lambda o: [o[0], *[x for x in (o[1] or []) if x and x != o[0]]])
        self.application = azuread.Application(
            f"{name}-app",
            display_name=display_name,
            owners=owners,
            notes=f"HayMaker agent for scenario {args.scenario} of run {args.run_id}; "
                  f"expires {iso(args.expires_at)}.",
            opts=child,
        )
        self.service_principal = azuread.ServicePrincipal(
            f"{name}-sp",
            client_id=self.application.client_id,
            owners=owners,
            opts=child,
        )
        # The credential dies on its own shortly after the run, even if every teardown fails.
        self.credential = azuread.ApplicationPassword(
            f"{name}-credential",
            application_id=self.application.id,
            display_name=f"haymaker-{args.run_id}",
            end_date=iso(args.credential_end),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["value"]),
        )
        self.client_id, self.principal_id = self.application.client_id, self.service_principal.object_id
