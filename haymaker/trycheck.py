"""What `haymaker try` checks before it creates anything.

First the input, offline: a scenario a try can run (none that works in Microsoft Graph or registers its
agent's own application: those need the platform's consented identities), minutes and location in range.
Then every prerequisite on the operator's machine, each on its own and all listed at once, as `up` does:
the Pulumi CLI and its state passphrase, the Azure CLI signed in, its default subscription the one to
try in, the right to create a resource group there, and the az extensions the scenario's steps use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta

from haymaker.doctor import CONTRIBUTOR, OWNER, Check, Doctor, jwt_claims, run_checks
from haymaker.errors import HayMakerError, InvalidInput, Refused
from haymaker.runspec import check_run_id

MIN_MINUTES, MAX_MINUTES, DEFAULT_MINUTES = 5, 60, 15
RUN_ID_SLACK = timedelta(minutes=15)  # a try starts now: its run id names the current minute
AZ_INSTALL = "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli) and put `az` on PATH"
AZ_TIMEOUT = 60


def refusal(scenario) -> str | None:
    """Why a try cannot run ``scenario`` without the platform, or None when it can."""
    up = f"run it in a deployed platform with `haymaker up -s {scenario.name}`"
    if scenario.graph_permissions:
        return (f"{scenario.name} works in Microsoft Graph ({', '.join(scenario.graph_permissions)}): its agent "
                f"borrows one of the platform's admin-consented Graph identities, which a try does not have: {up}")
    steps = [s for steps in scenario.phases.values() for s in steps]
    graph = [s.name for s in steps if s.plane == "graph"]
    if graph:
        return (f"{scenario.name} works in Microsoft Graph (step {graph[0]}), which needs the platform's "
                f"admin-consented identities: {up}")
    own_app = [s.name for s in steps if "${CLIENT_ID}" in s.run]
    if own_app:
        return (f"{scenario.name} needs its agent's own Entra application (step {own_app[0]} uses ${{CLIENT_ID}}), "
                f"which a try does not create (that needs Graph admin consent): {up}")
    return None


def check_minutes(minutes: int) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise InvalidInput(f"--minutes {minutes!r} is out of range: use a whole number of minutes from {MIN_MINUTES} "
                           f"to {MAX_MINUTES} (the working day is compressed into them)")
    return minutes


def check_run_id_now(run_id: str, now: datetime) -> str:
    """A try starts now: a run id for another time would make its stack expire at the wrong time."""
    minute = check_run_id(run_id)
    if abs(minute - now) > RUN_ID_SLACK:
        raise InvalidInput(f"run id {run_id} names {minute:%Y-%m-%d %H:%M}Z, but a try starts now: leave out "
                           f"--run-id, or give one for the current minute ({now:%Y%m%dt%H%Mz}-xxxx)")
    return run_id


def check_location(location: str, settings, scenario, policy_config: dict) -> None:
    """The group's location, and the locations the scenario's steps name, as the environment allows them."""
    name = settings.environment
    if location not in settings.allowed_locations:
        raise InvalidInput(f"--location {location} is not allowed in {name}: use one of "
                           f"{', '.join(settings.allowed_locations)}, or add it to allowedLocations in "
                           f"Pulumi.{name}.yaml and policies/config.{name}.json")
    rule = policy_config.get("allowed-locations") or {}
    allowed = set(rule.get("allowedLocations") or settings.allowed_locations) | set(rule.get("scenarioLocations") or ())
    outside = [loc for loc in scenario.locations if loc not in allowed]
    if outside:
        raise Refused(f"{scenario.name} names location {outside[0]} in its steps, which {name} does not allow: add "
                      f"it to allowed-locations scenarioLocations in policies/config.{name}.json, or try another "
                      "scenario")


def extensions_needed(scenario) -> list[str]:
    from scenarios.extensions import extension_for

    return sorted({e for steps in scenario.phases.values() for s in steps if (e := extension_for(s.run))})


# --- the operator's machine -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Account:
    """Who a try runs as, and where: the operator's own `az login`."""

    subscription_id: str
    subscription_name: str
    tenant_id: str
    object_id: str
    name: str  # what the Activity Log's Caller shows: a user's UPN, an application's id
    client_id: str  # the application the token was issued to (for a user: the Azure CLI's)
    kind: str  # user | application

    @property
    def callers(self) -> tuple[str, ...]:
        return tuple(x for x in (self.name,) if x and x != self.object_id)


def identity_of(claims: dict) -> tuple[str, str]:
    """(user | application, the name the Activity Log's Caller gives it) from an ARM token's claims."""
    if "scp" in claims:  # a delegated token: a person signed in
        return "user", claims.get("upn") or claims.get("unique_name") or claims.get("email") or ""
    return "application", claims.get("appid", "")


def run_az(*args: str) -> object:
    """One az command with JSON output, as the operator would run it."""
    exe = shutil.which("az")
    if exe is None:
        raise HayMakerError("no `az` on PATH", fix=AZ_INSTALL)
    try:
        done = subprocess.run([exe, *args, "--output", "json"], capture_output=True, text=True, timeout=AZ_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HayMakerError(f"`az {' '.join(args)}` did not run: {e}") from None
    if done.returncode != 0:
        said = [line for line in done.stderr.strip().splitlines() if line.strip()] or [f"exit {done.returncode}"]
        fix = "sign in with `az login`" if "az login" in done.stderr else ""
        raise HayMakerError(f"`az {' '.join(args)}` failed: {said[-1][:300]}", fix=fix)
    try:
        return json.loads(done.stdout or "null")
    except ValueError:
        raise HayMakerError(f"`az {' '.join(args)}` did not print JSON") from None


class Prerequisites:
    """The checks of a try, over the operator's az and the cloud's endpoints (tests point them at stand-ins)."""

    def __init__(self, cfg, environment: str, scenario, *, subscription: str | None, endpoints, credential, azure,
                 az=run_az):
        """``credential``: the Azure CLI credential; ``azure(subscription_id)``: an adapter signed in with it."""
        self.cfg, self.environment, self.scenario = cfg, environment, scenario
        self.wanted = subscription or cfg.get("subscription_id")
        self.endpoints, self._credential, self._azure, self._az = endpoints, credential, azure, az
        self._installed: set[str] | None = None
        self._claims: dict | None = None
        self.account: Account | None = None

    def run(self) -> list[Check]:
        doctor = Doctor(self.cfg, self.environment, credential=lambda: self._credential, azure=lambda: None,
                        driver=lambda: None, ledger=lambda: None, endpoints=self.endpoints)
        return run_checks((("pulumi cli", doctor.pulumi_cli), ("state backend", doctor.state_backend),
                           ("azure cli", self.azure_cli), ("az login", self.login), ("subscription", self.subscription),
                           ("rights", self.rights), ("az extensions", self.extensions)))

    def azure_cli(self) -> Check:
        version = self._az("version")
        self._installed = set((version or {}).get("extensions") or {})
        return Check("azure cli", True, f"azure-cli {(version or {}).get('azure-cli', '?')}")

    def login(self) -> Check:
        if shutil.which("az") is None:
            return Check("az login", False, "not checked", "install the Azure CLI first (see the azure cli check)")
        try:
            token = self._credential.get_token(self.endpoints.arm_scope).token
        except Exception as e:  # noqa: BLE001 - said with what to do
            said = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            return Check("az login", False, f"az gives no token for Azure Resource Manager: {said}",
                         "sign in with `az login` (a try runs as your own sign-in)")
        self._claims = claims = jwt_claims(token)
        if not claims.get("oid"):
            return Check("az login", False, "the token az gives names no object id", "sign in again with `az login`")
        kind, who = identity_of(claims)
        return Check("az login", True, f"signed in as {kind} {who or claims['oid']} (object id {claims['oid']}): the "
                                       "try runs as you, no service principal is created")

    def subscription(self) -> Check:
        if shutil.which("az") is None:
            return Check("subscription", False, "not checked", "install the Azure CLI first (see the azure cli check)")
        default = self._az("account", "show") or {}
        current = str(default.get("id", ""))
        wanted = self.wanted or current
        if not wanted:
            return Check("subscription", False, "no subscription is set", "`az account set --subscription ID` to your "
                                                                          "sandbox subscription")
        if wanted.lower() != current.lower():
            return Check("subscription", False, f"your az CLI's subscription is {current} ({default.get('name', '?')}), "
                                                f"not {wanted}",
                         f"`az account set --subscription {wanted}`: the agent runs az with your default subscription, "
                         "and a try does not change it")
        tenant = self._azure(wanted).subscription_tenant()  # ARM answers the token: readable, and whose
        if self._claims is not None:
            self._account(wanted, default.get("name", ""), tenant)
        return Check("subscription", True, f"{wanted} ({default.get('name', '?')}) in tenant {tenant}")

    def _account(self, subscription: str, name: str, tenant: str) -> None:
        c = self._claims
        kind, who = identity_of(c)
        self.account = Account(subscription, name, tenant, c["oid"], who, c.get("appid", ""), kind)

    def rights(self) -> Check:
        if self.account is None:
            return Check("rights", False, "not checked", "pass the az login and subscription checks first")
        held = {a.rsplit("/", 1)[-1].lower() for a in self._azure(self.account.subscription_id).role_definitions_of(
            self.account.object_id)}
        if not held & {CONTRIBUTOR, OWNER}:
            return Check("rights", False, f"{self.account.name or self.account.object_id} holds neither Contributor nor "
                                          f"Owner on subscription {self.account.subscription_id}",
                         "ask its owner for Contributor: a try creates a resource group there and works in it as you")
        return Check("rights", True, "Contributor or Owner on the subscription: you create and delete the group "
                                     "and everything in it")

    def extensions(self) -> Check:
        needed = extensions_needed(self.scenario)
        if not needed:
            return Check("az extensions", True, "the scenario's steps need none")
        if self._installed is None:
            return Check("az extensions", False, f"needs {', '.join(needed)}; not checked",
                         "install the Azure CLI first (see the azure cli check)")
        missing = [e for e in needed if e not in self._installed]
        if missing:
            return Check("az extensions", False, f"the scenario's steps need {', '.join(missing)}, which az lacks",
                         " and ".join(f"`az extension add --name {e}`" for e in missing)
                         + " (a try never installs anything itself)")
        return Check("az extensions", True, f"{', '.join(needed)} installed")
