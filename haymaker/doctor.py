"""`haymaker doctor`: every prerequisite of `up`, `down` and `reap`, each ok or failed with its fix.

`up` runs the same checks before it touches anything and lists every failed one at once. Each check
stands alone: one failing never hides the others; a check that needs what an earlier one could not
provide says so.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import asdict, dataclass
from typing import Callable

from haymaker.errors import HayMakerError

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
USER_ACCESS_ADMIN = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
DEPLOYER_GRAPH_PERMISSIONS = ("Application.ReadWrite.OwnedBy", "Application.Read.All")
PLATFORM_OUTPUTS = ("managedEnvironmentId", "agentPullIdentityId", "acrLoginServer")


class NotReady(HayMakerError):
    """Prerequisites are missing: the message lists every one, with its fix."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # ok, but worth a person's look (never refuses `up`)

    def line(self) -> str:
        return f"{self.name}: {self.detail}" + (f": {self.fix}" if self.fix and not self.ok else "")


def _failure(name: str, e: Exception) -> Check:
    fix = getattr(e, "fix", "")  # our errors say what to change; the SDK's only what failed
    text = str(e).strip().removesuffix(f": {fix}" if fix else "")
    first = text.splitlines()[0] if text else type(e).__name__
    return Check(name, False, first[:500], fix)


def jwt_claims(token: str) -> dict:
    """The claims of an access token, unverified: only to read what it grants."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


class Doctor:
    """The checks, over factories the CLI builds from configuration (tests point them at stand-ins)."""

    def __init__(self, cfg, environment: str, *, credential: Callable[[], object], azure: Callable[[], object],
                 driver: Callable[[], object], ledger: Callable[[], object], endpoints=None,
                 pinned_subscription: str | None = None, needs_graph_identities: bool = False,
                 github: Callable[[], list] | None = None):
        from haymaker.cloud import Endpoints

        self.cfg, self.environment = cfg, environment
        self._credential, self._azure, self._driver, self._ledger = credential, azure, driver, ledger
        self.endpoints = endpoints or Endpoints()
        self.pinned_subscription = pinned_subscription
        self.needs_graph_identities = needs_graph_identities
        self._github = github  # the GitHub Environment checks (`doctor --github`), or None
        self._arm_claims: dict | None = None
        self._outputs: dict | None = None

    def run(self) -> list[Check]:
        checks = run_checks((
            ("pulumi cli", self.pulumi_cli), ("state backend", self.state_backend),
            ("azure credential", self.credential), ("subscription", self.subscription),
            ("platform stack", self.platform), ("ledger", self.ledger),
            ("graph permission", self.graph_permission), ("rbac rights", self.rbac),
            ("graph grants", self.graph_grants), ("subscription groups", self.foreign_groups)))
        if self._github is not None:
            try:
                checks += self._github()
            except Exception as e:  # noqa: BLE001 - one failed check that says why, as for the others
                checks.append(_failure("github", e))
        return checks

    def teardown(self) -> list[Check]:
        """What a teardown needs: the CLI, the state, a credential for the subscription and the ledger. Not
        the platform's outputs, grants or role (a teardown must work with the platform gone, and as the
        reaper); missing rights show in the teardown's own report."""
        return run_checks((
            ("pulumi cli", self.pulumi_cli), ("state backend", self.state_backend),
            ("azure credential", self.credential), ("subscription", self.subscription), ("ledger", self.ledger)))

    def answer_key(self) -> list[Check]:
        """What `up` and `doctor` check beyond the teardown's prerequisites: that the answer key can be read."""
        return [self._guard("entra audit logs", self.entra_audit_logs)]

    @staticmethod
    def _guard(name: str, check) -> Check:
        try:
            return check()
        except Exception as e:  # noqa: BLE001 - a check that breaks is a failed check, with the reason
            return _failure(name, e)

    def _token(self, scope: str) -> str:
        try:
            return self._credential().get_token(scope).token
        except Exception as e:  # noqa: BLE001 - reported with what to do
            from haymaker.cloud import token_failure

            raise token_failure("Azure Resource Manager" if scope == self.endpoints.arm_scope else "Microsoft Graph",
                                e, self._credential()) from e

    # --- the checks ------------------------------------------------------------------------------------
    def pulumi_cli(self) -> Check:
        from haymaker.driver import INSTALL_HINT, MIN_CLI_VERSION, PulumiCliTooOld, check_cli_version

        import subprocess

        exe = shutil.which("pulumi")
        if exe is None:
            return Check("pulumi cli", False, "no `pulumi` on PATH", INSTALL_HINT)
        version = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}).stdout.strip()
        try:
            check_cli_version(version)
        except PulumiCliTooOld:
            need = ".".join(map(str, MIN_CLI_VERSION))
            return Check("pulumi cli", False, f"{version} at {exe} is older than {need}",
                         f"upgrade the Pulumi CLI to {need} or newer")
        return Check("pulumi cli", True, f"{version} at {exe}")

    def state_backend(self) -> Check:
        from haymaker.driver import backend_url

        url = backend_url(self.cfg.get("backend_url"))
        if url.startswith("file://") and not (os.environ.get("PULUMI_CONFIG_PASSPHRASE") is not None
                                              or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
            return Check("state backend", False, f"{url} encrypts stack secrets with a passphrase, and none is set",
                         "set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or PULUMI_BACKEND_URL")
        return Check("state backend", True, url)

    def credential(self) -> Check:
        self._arm_claims = jwt_claims(self._token(self.endpoints.arm_scope))
        who = self._arm_claims.get("upn") or self._arm_claims.get("appid") or self._arm_claims.get("oid") or "?"
        kind = "user" if "scp" in self._arm_claims else "application"
        return Check("azure credential", True, f"signed in as {kind} {who} ({type(self._credential()).__name__})")

    def subscription(self) -> Check:
        sub, tenant = self.cfg.get("subscription_id"), self.cfg.get("tenant_id")
        if not sub or not tenant:
            return Check("subscription", False, "AZURE_SUBSCRIPTION_ID or AZURE_TENANT_ID is not set",
                         "set both (environment, .env or `haymaker config set`) to the environment's subscription")
        if self.pinned_subscription and self.pinned_subscription != sub:
            return Check("subscription", False, f"{sub} is not the environment's subscription {self.pinned_subscription}",
                         "switch AZURE_SUBSCRIPTION_ID to haymaker:subscriptionId of Pulumi.<env>.yaml")
        actual = self._azure().subscription_tenant()
        if actual.lower() != tenant.lower():
            return Check("subscription", False, f"{sub} belongs to tenant {actual}, not {tenant}",
                         "log in to the right tenant (az login --tenant …) or fix AZURE_TENANT_ID")
        return Check("subscription", True, f"{sub} in tenant {tenant}")

    def _platform_outputs(self) -> dict:
        if self._outputs is None:
            self._outputs = self._driver().outputs(self.cfg.get("platform_stack") or self.environment)
        return self._outputs

    def platform(self) -> Check:
        name = self.cfg.get("platform_stack") or self.environment
        outputs = self._platform_outputs()
        wanted = PLATFORM_OUTPUTS + (("graphIdentities",) if self.needs_graph_identities else ())
        missing = [k for k in wanted if not outputs.get(k)]
        if missing:
            return Check("platform stack", False, f"{name} exports no {', '.join(missing)}",
                         f"deploy the platform of {self.environment} (a release tag; platform.yml)")
        return Check("platform stack", True, f"{name}: {len(outputs)} outputs")

    def ledger(self) -> Check:
        ledger = self._ledger()
        runs = ledger.list_runs(limit=1)
        return Check("ledger", True, f"{ledger.where} ({'has runs' if runs else 'empty'})")

    def graph_permission(self) -> Check:
        claims = jwt_claims(self._token(self.endpoints.graph_scope))
        if "scp" in claims:
            return Check("graph permission", True, "signed in as a user: Graph rights come from your directory "
                                                   "roles (the deployer's application permission is not checked)")
        roles = claims.get("roles") or []
        missing = [p for p in DEPLOYER_GRAPH_PERMISSIONS if p not in roles]
        if missing:
            return Check("graph permission", False, f"the token for Microsoft Graph carries {roles or 'no roles'}, "
                                                    f"not {' and '.join(missing)}",
                         "deploy the platform (it grants the deployer these permissions with admin consent)")
        return Check("graph permission", True, f"{' and '.join(DEPLOYER_GRAPH_PERMISSIONS)} granted")

    def rbac(self) -> Check:
        """The run deployer's custom role (haymaker/trust.py) at the subscription, or, for a person, Contributor
        and a role that may assign roles."""
        from haymaker.trust import run_deployer_role_name

        oid = (self._arm_claims or jwt_claims(self._token(self.endpoints.arm_scope))).get("oid")
        if not oid:
            return Check("rbac rights", False, "the ARM token names no object id", "sign in again")
        ids = self._azure().role_definitions_of(oid)
        held = {a.rsplit("/", 1)[-1].lower() for a in ids}
        if held & {CONTRIBUTOR, OWNER} and held & {RBAC_ADMIN, USER_ACCESS_ADMIN, OWNER}:
            return Check("rbac rights", True, f"{len(held)} role(s) at the subscription, Contributor and role "
                                              "assignment rights among them")
        wanted = run_deployer_role_name(self.environment)
        builtin = {r.guid for r in _builtin_roles()}
        custom = [i for i in ids if i.rsplit("/", 1)[-1].lower() not in builtin]
        held_id = next((i for i in custom if self._azure().role_name(i) == wanted), None)
        if held_id is not None:
            return self._condition(oid, held_id, wanted)
        return Check("rbac rights", False, f"{oid} holds neither {wanted} nor Contributor with role assignment "
                                           "rights at the subscription",
                     "an Owner assigns the run deployer its role, as `haymaker platform bootstrap --print` step 4 "
                     "prints")

    def _condition(self, oid: str, role_id: str, role: str) -> Check:
        """Its role assignment condition, which a person granted, still allows every role the catalog's
        scenarios hold now (adding one to a scenario changes what it must allow)."""
        from haymaker import trust

        condition = self._azure().role_conditions_of(oid).get(role_id)
        table = trust.load_table(self.environment)
        needed = {r.name: r.guid.lower() for r in _builtin_roles() if r.name in table.catalog_roles}
        missing = sorted(r for r, guid in needed.items() if not all(
            trust.condition_allows(condition, f"Microsoft.Authorization/roleAssignments/{a}", frozenset({guid}))
            for a in ("write", "delete")))
        if condition is None or missing:
            what = ("its role assignment has no condition: it could assign any role" if condition is None else
                    f"its role assignment condition does not allow {', '.join(missing)}, which the catalog's "
                    "scenarios hold")
            return Check("rbac rights", False, f"{role}: {what}",
                         "an Owner assigns the role again with the condition `haymaker platform bootstrap --print` "
                         "step 4 prints")
        return Check("rbac rights", True, f"{role} at the subscription, its condition allowing the catalog's "
                                          f"{len(needed)} roles")

    def graph_grants(self) -> Check:
        """Read-only: each Graph identity the platform made holds what a person was to grant it."""
        from haymaker.grants import verify_identities

        identities = self._platform_outputs().get("graphIdentities") or {}
        if not identities:
            return Check("graph grants", True, "no Graph identity to check")
        try:
            problems = verify_identities(self._azure().graph_reader(), identities)
        except Exception as e:  # noqa: BLE001 - a warning like the rest of this check: it never holds up a run
            failed = _failure("graph grants", e)
            return Check("graph grants", True, f"cannot read them: {failed.detail}", failed.fix or
                         "sign in as an identity with Application.Read.All (the run deployer holds it)", warning=True)
        if problems:  # a warning: runs of other scenarios need none of it; `up` refuses to borrow one not granted
            return Check("graph grants", True, "; ".join(problems),
                         f"a Privileged Role Administrator runs what `haymaker platform grants -e {self.environment}` "
                         "prints", warning=True)
        slots = sum(len(e.get("identities") or []) for e in identities.values())
        return Check("graph grants", True, f"{slots} Graph identities hold their scenarios' Graph permissions")

    def foreign_groups(self) -> Check:
        """A warning: resource groups HayMaker did not create share this subscription (and its blast radius)."""
        try:
            groups = self._azure().resource_groups()
        except Exception as e:  # noqa: BLE001 - a warning, never a reason to hold up a run
            return Check("subscription groups", True, f"cannot list them: {_failure('', e).detail}", warning=True)
        foreign = sorted(name for name, tags in groups if not haymakers_group(name, tags))
        if not foreign:
            return Check("subscription groups", True, "every resource group is HayMaker's (or Azure's for it)")
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        return Check("subscription groups", True, f"{len(foreign)} resource group(s) HayMaker did not create: {shown}",
                     "give each environment a subscription of its own (docs/operations.md)", warning=True)

    def entra_audit_logs(self) -> Check:
        """The one-time step that sends the tenant's Entra audit logs to the platform's workspace, checked by
        its effect (read-only, with the rights `truth` has): the AuditLogs table holds recent records."""
        from datetime import datetime, timezone

        from haymaker.loganalytics import LogAnalytics, UnknownName
        from haymaker.truth import AUDIT_RECENT, latest_audit

        name = "entra audit logs"
        if not self.needs_graph_identities:
            return Check(name, True, "no Graph scenario in the catalog: the answer key reads no Entra audit log")
        workspace = self.cfg.get("log_analytics_workspace") or self._driver().outputs(
            self.cfg.get("platform_stack") or self.environment).get("logAnalyticsWorkspaceId")
        if not workspace:
            return Check(name, False, "no workspace to look in", "set HAYMAKER_LOG_ANALYTICS_WORKSPACE to the platform "
                                                                "stack's logAnalyticsWorkspaceId output")
        fix = (f"once, a Security Administrator (or Global Administrator) adds a diagnostic setting of Microsoft "
               f"Entra ID (microsoft.aadiam/diagnosticSettings) that sends AuditLogs to {workspace}: "
               "docs/operations.md, \"Entra audit logs\"")
        try:
            latest = latest_audit(LogAnalytics(workspace, self._credential(), self.endpoints.log_analytics),
                                  datetime.now(timezone.utc))
        except UnknownName as e:
            if e.name != "AuditLogs":
                raise
            return Check(name, False, "the workspace has no AuditLogs table: the tenant's Entra audit logs are not "
                                      "sent to it, so truth cannot observe the directory plane", fix)
        if latest is None:
            return Check(name, False, f"no Entra audit record reached the workspace in {AUDIT_RECENT.days} days: "
                                      "the diagnostic setting may have been removed", fix)
        return Check(name, True, f"Entra audit logs reach the workspace (latest {latest:%Y-%m-%d %H:%M} UTC)")


# Groups Azure makes for resources HayMaker's runs and platform create (a managed environment, a cluster's
# nodes, network watchers, a workspace's defaults); they carry no HayMaker tag.
AZURE_MANAGED_PREFIXES = ("ME_", "MC_", "NetworkWatcherRG", "DefaultResourceGroup-", "databricks-rg-",
                          "AzureBackupRG_", "MA_")


def haymakers_group(name: str, tags: dict) -> bool:
    if name.startswith(AZURE_MANAGED_PREFIXES):
        return True
    return name.startswith("haymaker-") and (tags or {}).get("AzureHayMaker-managed") == "true"


def _builtin_roles():
    from components.roles import BUILTIN_ROLES

    return BUILTIN_ROLES.values()


def run_checks(checks) -> list[Check]:
    """Each ``(name, check)`` on its own: one that fails or breaks never hides the others."""
    return [Doctor._guard(name, check) for name, check in checks]


def print_checks(checks: list[Check], console) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for c in checks:
        state = "[yellow]warn[/]" if c.ok and c.warning else "[green]ok[/]" if c.ok else "[red]failed[/]"
        table.add_row(state, c.name, c.detail + (f"\n[dim]fix:[/] {c.fix}" if c.fix and (c.warning or not c.ok) else ""))
    console.print(table)


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}


def refuse_unless_ready(checks: list[Check]) -> None:
    failed = [c for c in checks if not c.ok]
    if failed:
        raise NotReady(f"{len(failed)} prerequisite(s) missing; nothing was changed:\n"
                       + "\n".join(f"  - {c.line()}" for c in failed))
