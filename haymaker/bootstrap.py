"""From an empty subscription to the first run, in order: what `haymaker platform bootstrap --print` prints.

Every step is a person's, done once, and each is derived from the trust table (haymaker/trust.py): the
state backend and secrets key of each environment, HayMaker's custom roles, the identities a workflow
obtains (each trusted by one GitHub Environment), the role assignments that could grant rights (so no
identity a workflow can obtain may make them), the Graph app roles of those identities, the
administrative unit for the agents' groups, the GitHub Environments with their protection and
variables, the platform's config, the first release, and after it the Graph identities' rights. No
step needs what a later one makes: the identities exist before the tag that uses them, and the run
deployers get the state backend and its key from the person who creates them.

The output is a bash script to read and run step by step (``set -euo pipefail``); it holds identifiers
only, never a secret. Same input, same bytes.
"""

from __future__ import annotations

import json
import re
import shlex

from components.roles import MICROSOFT_GRAPH_APP_ID
from haymaker import trust
from haymaker.errors import InvalidInput
from haymaker.trust import GITHUB_AUDIENCE, GITHUB_ISSUER

GRAPH = "https://graph.microsoft.com/v1.0"
_ALWAYS_REGISTERED = {"microsoft.authorization", "microsoft.resources"}


def _var(env: str, key: str, what: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"{env}_{key}_{what}".upper())


FIRST_TAGS = {"dev": "v0.1.0-dev", "staging": "v0.1.0-rc.1", "prod": "v0.1.0"}


def _q(text: str) -> str:
    return shlex.quote(text)


def providers(tables, catalog) -> list[str]:
    """Resource providers the platform, the runs and the agents' scenarios use (a person registers them:
    no HayMaker identity holds ``*/register/action``)."""
    actions = [a for t in tables for role in t.custom_roles.values() for a in role.actions]
    services = [s for sc in catalog.scenarios.values() for s in sc.services]
    found = {x.split("/", 1)[0] for x in actions + services if x.lower().startswith("microsoft.")}
    found |= {"Microsoft.KeyVault", "Microsoft.Storage"}  # the state backend and its key
    return sorted({f for f in found if f.lower() not in _ALWAYS_REGISTERED}, key=str.lower)


def check_inputs(repository: str, environments: list[str], subscriptions: dict[str, str]) -> None:
    trust.check_repository(repository)
    if not environments:
        raise InvalidInput("--environments is empty: name at least one, e.g. --environments dev,prod")
    for env in environments:
        sub = subscriptions.get(env)
        if not sub:
            raise InvalidInput(f"no subscription for {env}: give --subscription ID (every environment) or "
                               f"--subscription {env}=ID")
        if not trust.GUID_RE.match(sub):
            raise InvalidInput(f"subscription {sub!r} of {env} is not a subscription id (a GUID)")


def render(repository: str, environments: list[str], subscriptions: dict[str, str], catalog, *,
           reviewer: str | None = None) -> str:
    from haymaker.settings import load_environment
    from stacks.config import load_platform_settings

    check_inputs(repository, environments, subscriptions)
    settings = {env: load_environment(env) for env in environments}
    pools = {env: load_platform_settings(env).graph_identity_pool_size for env in environments}
    tables = {env: trust.load_table(env, catalog, pool_size=pools[env]) for env in environments}
    shared = len({subscriptions[e] for e in environments}) < len(environments)
    out = Script()
    out.header(repository, environments, subscriptions, shared, reviewer)
    out.step("1", "an Owner of each subscription", "resource providers, and the state backend and secrets key")
    for env in environments:
        out.state_backend(env, subscriptions[env], settings[env].location, providers(tables.values(), catalog))
    out.step("2", "an Owner of each subscription", "HayMaker's custom roles (a role definition can grant anything: "
                                                   "no HayMaker identity may write one)")
    for env in environments:
        for role in tables[env].custom_roles.values():
            out.line(f"az role definition create --role-definition {_q(json.dumps(role.as_json(subscriptions[env])))}")
    out.step("3", "anyone who may register applications", "the identities GitHub Actions obtains, each trusted by "
                                                         "one GitHub Environment, no secret")
    for env in environments:
        for identity in tables[env].federated():
            if identity.kind == trust.APPLICATION:
                out.application(env, identity, repository)
    out.step("4", "an Owner of each subscription", "what could grant rights, granted once: the custom roles (role "
                                                   "assignments only under their conditions) and the state backend")
    for env in environments:
        out.role_assignments(env, tables[env], subscriptions[env])
    out.step("5", "a Privileged Role Administrator", "the applications' Microsoft Graph permissions (admin consent)")
    out.line(f"graph_sp=\"$(az ad sp show --id {MICROSOFT_GRAPH_APP_ID} --query id --output tsv)\"")
    for env in environments:
        out.graph_permissions(env, tables[env])
    if any(i.directory_roles for t in tables.values() for i in t.identities):
        out.step("6", "a Privileged Role Administrator", "the administrative unit the agents' groups are created in "
                                                         "(their Graph identities get a Groups Administrator role "
                                                         "scoped to it in step 11, once they exist)")
        for env in environments:
            if any(i.directory_roles for i in tables[env].identities):
                name = trust.administrative_unit_name(env)
                out.line(f"az rest --method POST --uri {GRAPH}/directory/administrativeUnits --body "
                         f"{_q(json.dumps({'displayName': name, 'description': f'Groups HayMaker {env} agents create'}))}")
    out.step("7", "an administrator of the GitHub repository", "the GitHub Environments and their protection")
    for env in environments:
        for gh in tables[env].github:
            out.github_environment(repository, gh)
    out.step("8", "an administrator of the GitHub repository", "each GitHub Environment's variables (identifiers, "
                                                              "not secrets)")
    for env in environments:
        for gh in tables[env].github:
            out.variables(repository, env, gh, tables[env], subscriptions[env], settings[env])
    out.step("9", "a maintainer, by pull request", "the platform's config: the repository, the subscription and "
                                                  "the object ids the platform grants data roles to")
    for env in environments:
        out.platform_config(env, tables[env], repository, subscriptions[env], settings[env])
    out.step("10", "a maintainer", "the first release (the platform, then the agent image)")
    out.first_release(environments)
    out.step("11", "a Privileged Role Administrator, once the platform exists", "the Graph identities' rights")
    for env in environments:
        out.line(f"haymaker platform grants --environment {env} > grants-{env}.sh  # read it, then: bash grants-{env}.sh")
    out.step("12", "anyone", "check everything read-only, then start the first run")
    for env in environments:
        out.line(f"haymaker doctor --environment {env} --github --repo {repository}")
        out.line(f"haymaker platform verify --environment {env} --repo {repository}")
        out.line(f"gh workflow run run.yml --repo {repository} -f environment={env}")
    return out.text()


class Script:
    def __init__(self):
        self.lines: list[str] = []

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def step(self, number: str, who: str, what: str) -> None:
        self.line()
        self.comment(f"--- Step {number} ({who}): {what}")

    def header(self, repository, environments, subscriptions, shared, reviewer) -> None:
        self.line("#!/usr/bin/env bash")
        self.comment(f"HayMaker bootstrap of {repository} for {', '.join(environments)}: from an empty subscription")
        self.comment("to the first run. Run the steps in order, each as the person it names; each prints what it")
        self.comment("made. Nothing here is a secret. HayMaker never repeats these steps: it only verifies them")
        self.comment("(`haymaker doctor --github`, `haymaker platform verify`).")
        self.comment("Recommended: a dedicated subscription per environment. A shared subscription shares its blast")
        self.comment("radius: an identity of one environment can reach the resources of another there.")
        if shared:
            self.comment("WARNING: these environments share a subscription.")
        self.line("set -euo pipefail")
        if reviewer:
            self.line(f"REVIEWER={_q(reviewer)}")
        self.line(': "${REVIEWER:?set REVIEWER to the GitHub login that approves platform and prod deployments}"')
        self.line(f"TENANT=\"$(az account show --subscription {subscriptions[environments[0]]} --query tenantId "
                  "--output tsv)\"")

    def state_backend(self, env, sub, location, namespaces) -> None:
        account, vault = trust.state_account_name(env, sub), trust.state_vault_name(env, sub)
        group = f"haymaker-{env}-state"
        self.comment(f"{env}: subscription {sub}")
        self.line(f"az account set --subscription {sub}")
        self.line(f"for ns in {' '.join(namespaces)}; do az provider register --namespace \"$ns\" --output none; done")
        self.line(f"az group create --name {group} --location {location} --tags AzureHayMaker-managed=true "
                  f"haymaker-env={env} haymaker-component=state --output none")
        self.line(f"az storage account create --name {account} --resource-group {group} --location {location} "
                  "--sku Standard_ZRS --kind StorageV2 --min-tls-version TLS1_2 --allow-blob-public-access false "
                  "--allow-shared-key-access false --https-only true --output none")
        self.line(f"az storage container create --account-name {account} --name {trust.state_container_name(env)} "
                  "--auth-mode login --output none")
        self.line(f"az keyvault create --name {vault} --resource-group {group} --location {location} "
                  "--enable-rbac-authorization true --enable-purge-protection true --output none")
        self.comment("the key is made by you (Key Vault Crypto Officer on the vault), used by the identities below")
        self.line(f"az role assignment create --assignee \"$(az ad signed-in-user show --query id --output tsv)\" "
                  f"--role \"Key Vault Crypto Officer\" --scope \"$(az keyvault show --name {vault} --query id "
                  "--output tsv)\" --output none")
        self.line(f"az keyvault key create --vault-name {vault} --name {trust.secrets_key_name(env)} --kty RSA "
                  "--size 3072 --output none")

    def application(self, env, identity, repository) -> None:
        app, sp = _var(env, identity.key, "app"), _var(env, identity.key, "sp")
        self.comment(f"{identity.name}: {identity.purpose}")
        self.line(f"{app}=\"$(az ad app create --display-name {identity.name} --sign-in-audience AzureADMyOrg "
                  "--query appId --output tsv)\"")
        self.line(f"{sp}=\"$(az ad sp create --id \"${app}\" --query id --output tsv)\"")
        for gh, subject in zip(identity.github_environments, identity.subjects(repository)):
            doc = {"name": f"github-{gh}", "issuer": GITHUB_ISSUER, "subject": subject, "audiences": [GITHUB_AUDIENCE],
                   "description": f"GitHub Actions of {repository}, GitHub Environment {gh} (HayMaker)"}
            self.line(f"az ad app federated-credential create --id \"${app}\" --parameters {_q(json.dumps(doc))} "
                      "--output none")
        self.line(f"echo \"{identity.name}: client id ${app}, object id ${sp}\"")

    def role_assignments(self, env, table, sub) -> None:
        account, vault = trust.state_account_name(env, sub), trust.state_vault_name(env, sub)
        scopes = {trust.SUBSCRIPTION: f"/subscriptions/{sub}",
                  trust.STATE: f"/subscriptions/{sub}/resourceGroups/haymaker-{env}-state/providers/"
                               f"Microsoft.Storage/storageAccounts/{account}/blobServices/default/containers/"
                               f"{trust.state_container_name(env)}",
                  trust.SECRETS_KEY: f"/subscriptions/{sub}/resourceGroups/haymaker-{env}-state/providers/"
                                     f"Microsoft.KeyVault/vaults/{vault}/keys/{trust.secrets_key_name(env)}"}
        for identity in table.federated():
            if identity.kind != trust.APPLICATION:
                continue
            for g in identity.roles:
                if g.granted_by != trust.PERSON:
                    continue
                condition = (f" --condition {_q(g.condition)} --condition-version 2.0") if g.condition else ""
                self.line(f"az role assignment create --assignee-object-id \"${_var(env, identity.key, 'sp')}\" "
                          f"--assignee-principal-type ServicePrincipal --role {_q(g.role)} --scope {scopes[g.scope]}"
                          f"{condition} --output none  # {identity.name}")

    def graph_permissions(self, env, table) -> None:
        from components.roles import GRAPH_APP_ROLES

        for identity in table.federated():
            if identity.kind != trust.APPLICATION:
                continue
            sp = _var(env, identity.key, "sp")
            for perm in identity.graph:
                body = json.dumps({"principalId": "PRINCIPAL", "resourceId": "GRAPH", "appRoleId": GRAPH_APP_ROLES[perm]})
                body = "'" + body.replace('"PRINCIPAL"', f'"\'"${sp}"\'"').replace('"GRAPH"', '"\'"$graph_sp"\'"') + "'"
                self.line(f"az rest --method POST --uri \"{GRAPH}/servicePrincipals/${sp}/appRoleAssignments\" "
                          f"--body {body} --output none  # {identity.name}: {perm}")

    def github_environment(self, repository, gh) -> None:
        doc = {"deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}}
        self.comment(f"{gh.name}: {gh.purpose}"
                     + ("; a reviewer approves each job" if gh.reviewers else ""))
        if gh.reviewers:
            doc.update(prevent_self_review=True, reviewers=[{"type": "User", "id": "REVIEWER_ID"}])
            body = json.dumps(doc, sort_keys=True).replace('"REVIEWER_ID"', "$(gh api \"users/$REVIEWER\" --jq .id)")
            self.line(f"gh api --method PUT repos/{repository}/environments/{gh.name} --input - <<JSON\n{body}\nJSON")
        else:
            self.line(f"gh api --method PUT repos/{repository}/environments/{gh.name} --input - <<'JSON'\n"
                      f"{json.dumps(doc, sort_keys=True)}\nJSON")
        for kind, names in (("branch", gh.branches), ("tag", gh.tags)):
            for name in names:
                self.line(f"gh api --method POST repos/{repository}/environments/{gh.name}/deployment-branch-policies "
                          f"-f name={_q(name)} -f type={kind} --silent")

    def variables(self, repository, env, gh, table, sub, settings) -> None:
        from components.platform import ledger_account_name, registry_name_of

        ledger = ledger_account_name(env, sub)
        account, vault = trust.state_account_name(env, sub), trust.state_vault_name(env, sub)
        identity = next((i for i in table.federated() if i.github_environments == (gh.name,)), None)
        values = {
            "AZURE_TENANT_ID": "$TENANT", "AZURE_SUBSCRIPTION_ID": sub,
            "PULUMI_BACKEND_URL": f"azblob://{trust.state_container_name(env)}", "AZURE_STORAGE_ACCOUNT": account,
            "HAYMAKER_SECRETS_PROVIDER": f"azurekeyvault://{vault}.vault.azure.net/keys/{trust.secrets_key_name(env)}",
            "HAYMAKER_LEDGER_ENDPOINT": f"https://{ledger}.table.core.windows.net",
            "HAYMAKER_LOG_ANALYTICS_WORKSPACE": f"/subscriptions/{sub}/resourceGroups/haymaker-{env}-platform/providers/"
                                               f"Microsoft.OperationalInsights/workspaces/haymaker-{env}-logs",
            "HAYMAKER_REPORTS_CONTAINER_URL": f"https://{ledger}.blob.core.windows.net/reports",
            "AGENT_REGISTRY": registry_name_of(settings.agent_image) or "",
        }
        if identity is not None and identity.variable:
            values[identity.variable] = f"${_var(env, identity.key, 'app')}"
        for name in gh.variables:
            value = values[name]
            shown = f"\"{value}\"" if value.startswith("$") else _q(value)
            self.line(f"gh variable set {name} --repo {repository} --env {gh.name} --body {shown}")

    def platform_config(self, env, table, repository, sub, settings) -> None:
        ids = "\n".join(f"    {key}: ${_var(env, key, 'sp')}" for key in trust.object_id_keys(table))
        # The image the first release pushes (agent-image.yml tags it with the release tag); registry names are
        # global, so a clash is fixed here, in allowedRegistries and in policies/config.<env>.json together.
        repo = settings.agent_image.split("@", 1)[0].rsplit(":", 1)[0] if "/" in settings.agent_image else \
            settings.agent_image
        self.comment(f"Pulumi.{env}.yaml (the rest of its config stays as it is):")
        self.line(f"cat <<YAML\n  haymaker:githubRepository: {repository}\n  haymaker:subscriptionId: {sub}\n"
                  f"  haymaker:agentImage: {repo}:{FIRST_TAGS.get(env, 'v0.1.0-' + env)}\n"
                  f"  haymaker:identityObjectIds:\n{ids}\nYAML")

    def first_release(self, environments) -> None:
        self.comment("Merge the config, then tag main. platform.yml deploys the platform (after a reviewer of")
        self.comment("platform-<env>); agent-image.yml pushes the image and prints its digest. The release run of this")
        self.comment("first tag stops at its prerequisites (no platform yet) and creates nothing: run it in step 12.")
        tags = FIRST_TAGS
        for env in environments:
            if env in tags:
                self.line(f"git tag {tags[env]} && git push origin {tags[env]}")
                if env in trust.PROTECTED:
                    self.comment(f"{env} runs images by digest (policy refuses a tag): set haymaker:agentImage in "
                                 f"Pulumi.{env}.yaml to the digest agent-image.yml printed for {tags[env]}, by pull "
                                 "request; until then its runs are refused, saying so")
