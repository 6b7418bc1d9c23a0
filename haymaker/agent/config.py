"""The agent's inputs: environment variables set on the Container Apps Job by components/agent.py."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping

from haymaker import naming
from haymaker.errors import InvalidInput
from haymaker.runspec import check_run_id, parse_iso

DEFAULT_CLEANUP_BUFFER_MINUTES = 30
# Placeholders for a dry run on a machine without the job's environment: nothing reaches Azure.
DRY_RUN_LOCATION = "swedencentral"
DRY_RUN_GUID = "00000000-0000-0000-0000-000000000000"
DRY_RUN_SECRET = "dry-run-no-secret"

VARIABLES = ("HAYMAKER_RUN_ID", "HAYMAKER_SCENARIO", "HAYMAKER_EXPIRES_AT", "HAYMAKER_RESOURCE_GROUP",
             "HAYMAKER_LOCATION", "HAYMAKER_CLEANUP_BUFFER_MINUTES", "AZURE_TENANT_ID",
             "AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "HAYMAKER_AGENT_OBJECT_ID", "AZURE_CLIENT_SECRET")
# How the agent signs in (components/agent.py): its own service principal with a run-scoped secret,
# or a platform Graph identity attached to the job as a user-assigned managed identity (no secret); or,
# in `haymaker try`, not at all: it runs as the operator's own `az login` on the operator's machine.
LOGIN_SERVICE_PRINCIPAL = "service-principal"
LOGIN_MANAGED_IDENTITY = "managed-identity"
LOGIN_USER = "user"
LOGINS = (LOGIN_SERVICE_PRINCIPAL, LOGIN_MANAGED_IDENTITY, LOGIN_USER)
_LOCATION_RE = re.compile(r"^[a-z0-9]{2,40}$")


@dataclass(frozen=True)
class AgentConfig:
    run_id: str
    scenario: str
    expires_at: datetime
    resource_group: str
    location: str
    cleanup_buffer_minutes: int
    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str = field(repr=False)
    agent_object_id: str = DRY_RUN_GUID  # the object id of the identity the agent signs in as
    login: str = LOGIN_SERVICE_PRINCIPAL
    admin_unit_id: str = DRY_RUN_GUID  # HayMaker's administrative unit (HAYMAKER_ADMIN_UNIT_ID, Graph scenarios)

    @property
    def cleanup_at(self) -> datetime:
        """When the working day ends and cleanup starts: the buffer before the run expires."""
        return self.expires_at - timedelta(minutes=self.cleanup_buffer_minutes)

    @property
    def user_agent(self) -> str:
        return user_agent(self.run_id, self.scenario)


def user_agent(run_id: str, scenario: str) -> str:
    """Appended by az to every request, so the Activity Log names the run and scenario."""
    return f"haymaker/{run_id}/{scenario}"


def config_from_env(env: Mapping[str, str], defaults: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and check every input; report all problems at once, each naming the variable to fix.

    ``defaults`` fill variables the environment lacks (a dry run's flags and placeholders)."""
    values = {**(defaults or {}), **{k: env[k] for k in (*VARIABLES, "HAYMAKER_LOGIN") if env.get(k)}}
    login = values.get("HAYMAKER_LOGIN", LOGIN_SERVICE_PRINCIPAL)
    if login not in LOGINS:
        raise InvalidInput(f"HAYMAKER_LOGIN {login!r} is not one of {', '.join(LOGINS)}")
    # Only a service principal has a secret to pass.
    needed = [n for n in VARIABLES if not (n == "AZURE_CLIENT_SECRET" and login != LOGIN_SERVICE_PRINCIPAL)]
    problems = [f"{name} is not set" for name in needed if not values.get(name)]
    if problems:
        raise InvalidInput("; ".join(problems) + ": the agent job sets these (components/agent.py); "
                           "for a local try use `haymaker agent run --dry-run`")
    checked = {}
    for name, check in _CHECKS.items():
        try:
            checked[name] = check(values[name])
        except (InvalidInput, ValueError) as e:
            problems.append(f"{name}: {e}")
    if problems:
        raise InvalidInput("; ".join(problems))
    return AgentConfig(
        run_id=checked["HAYMAKER_RUN_ID"], scenario=values["HAYMAKER_SCENARIO"],
        expires_at=checked["HAYMAKER_EXPIRES_AT"], resource_group=checked["HAYMAKER_RESOURCE_GROUP"],
        location=checked["HAYMAKER_LOCATION"], cleanup_buffer_minutes=checked["HAYMAKER_CLEANUP_BUFFER_MINUTES"],
        tenant_id=checked["AZURE_TENANT_ID"], subscription_id=checked["AZURE_SUBSCRIPTION_ID"],
        client_id=checked["AZURE_CLIENT_ID"], client_secret=values.get("AZURE_CLIENT_SECRET", ""),
        agent_object_id=checked["HAYMAKER_AGENT_OBJECT_ID"], login=login,
        admin_unit_id=values.get("HAYMAKER_ADMIN_UNIT_ID") or DRY_RUN_GUID,
    )


def dry_run_defaults(*, scenario: str | None, run_id: str, expires_at: str) -> dict[str, str]:
    """Stand-ins for the job's environment when trying the agent locally."""
    defaults = {"HAYMAKER_RUN_ID": run_id, "HAYMAKER_EXPIRES_AT": expires_at,
                "HAYMAKER_LOCATION": DRY_RUN_LOCATION,
                "HAYMAKER_CLEANUP_BUFFER_MINUTES": str(DEFAULT_CLEANUP_BUFFER_MINUTES),
                "AZURE_TENANT_ID": DRY_RUN_GUID, "AZURE_SUBSCRIPTION_ID": DRY_RUN_GUID,
                "AZURE_CLIENT_ID": DRY_RUN_GUID, "HAYMAKER_AGENT_OBJECT_ID": DRY_RUN_GUID,
                "AZURE_CLIENT_SECRET": DRY_RUN_SECRET}
    if scenario:
        defaults["HAYMAKER_SCENARIO"] = scenario
        defaults["HAYMAKER_RESOURCE_GROUP"] = naming.resource_group_name(run_id, scenario)
    return defaults


def _run_id(value: str) -> str:
    check_run_id(value)
    return value


def _resource_group(value: str) -> str:
    if not naming.is_valid_resource_group_name(value):
        raise ValueError(f"{value!r} is not a valid resource group name")
    return value


def _location(value: str) -> str:
    if not _LOCATION_RE.match(value):
        raise ValueError(f"{value!r} is not an Azure location name such as swedencentral")
    return value


def _minutes(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 240:
        raise ValueError(f"{value!r} must be a whole number of minutes from 1 to 240")
    return int(value)


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a GUID such as {DRY_RUN_GUID}") from None


_CHECKS = {
    "HAYMAKER_RUN_ID": _run_id,
    "HAYMAKER_EXPIRES_AT": parse_iso,
    "HAYMAKER_RESOURCE_GROUP": _resource_group,
    "HAYMAKER_LOCATION": _location,
    "HAYMAKER_CLEANUP_BUFFER_MINUTES": _minutes,
    "AZURE_TENANT_ID": _guid,
    "AZURE_SUBSCRIPTION_ID": _guid,
    "AZURE_CLIENT_ID": _guid,
    "HAYMAKER_AGENT_OBJECT_ID": _guid,
}
