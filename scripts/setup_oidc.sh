#!/usr/bin/env bash
# One-time bootstrap of the identity GitHub Actions uses in Azure, through OpenID Connect: an Entra
# application and its service principal, with federated credentials that trust this repository's
# GitHub Environments (repo:<owner>/<repo>:environment:<env>) and, for the reaper and the drift
# check, which name no environment, its main branch (repo:<owner>/<repo>:ref:refs/heads/main).
# No client secret is created. Idempotent: an existing application or credential is reused.
# Prints the GitHub variables to set (identifiers only; nothing here is a secret).
#
# Needs the Azure CLI, logged in (`az login`) as someone who may create applications.
set -euo pipefail

ISSUER="https://token.actions.githubusercontent.com"
AUDIENCE="api://AzureADTokenExchange"

usage() {
  cat <<'USAGE'
Usage: scripts/setup_oidc.sh --repo OWNER/NAME --subscription SUBSCRIPTION_ID [options]

Creates (or reuses) the Entra application and service principal GitHub Actions logs in as,
with one federated credential per GitHub Environment, and prints the GitHub variables to set.

Options:
  --repo OWNER/NAME         the GitHub repository (required)
  --subscription ID         the Azure subscription runs deploy to (required; a GUID)
  --app-name NAME           display name of the application (default: haymaker-github-actions)
  --environments LIST       comma-separated GitHub Environments to trust (default: dev,staging,prod)
  --branch NAME             also trust workflows on this branch that name no environment
                            (the reaper and the drift check; default: main)
  --no-branch               do not trust a branch (the reaper and drift check cannot log in)
  --dry-run                 print the az commands instead of running them
  -h, --help                show this help
USAGE
}

die_usage() {
  echo "setup_oidc: $1" >&2
  echo "Run scripts/setup_oidc.sh --help for the options." >&2
  exit 2
}

die() {
  echo "setup_oidc: $1" >&2
  exit 1
}

REPO=""
SUBSCRIPTION=""
APP_NAME="haymaker-github-actions"
ENVIRONMENTS="dev,staging,prod"
BRANCH="main"
DRY_RUN=false

while [ "$#" -gt 0 ]; do
  case "$1" in
    --repo|--subscription|--app-name|--environments|--branch)
      [ "$#" -ge 2 ] || die_usage "$1 needs a value"
      case "$1" in
        --repo) REPO="$2" ;;
        --subscription) SUBSCRIPTION="$2" ;;
        --app-name) APP_NAME="$2" ;;
        --environments) ENVIRONMENTS="$2" ;;
        --branch) BRANCH="$2" ;;
      esac
      shift 2 ;;
    --no-branch) BRANCH=""; shift ;;
    --dry-run) DRY_RUN=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

[ -n "$REPO" ] || die_usage "--repo OWNER/NAME is required"
[ -n "$SUBSCRIPTION" ] || die_usage "--subscription SUBSCRIPTION_ID is required"
[[ "$REPO" =~ ^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$ ]] \
  || die_usage "--repo '$REPO' is not OWNER/NAME (letters, digits, '-', '.', '_')"
[[ "$SUBSCRIPTION" =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] \
  || die_usage "--subscription '$SUBSCRIPTION' is not a subscription id (a GUID)"
[[ "$APP_NAME" =~ ^[A-Za-z0-9][A-Za-z0-9\ ._-]{0,119}$ ]] \
  || die_usage "--app-name '$APP_NAME' must be 1-120 letters, digits, spaces, '.', '_' or '-'"
if [ -n "$BRANCH" ] && [[ ! "$BRANCH" =~ ^[A-Za-z0-9._/-]+$ ]]; then
  die_usage "--branch '$BRANCH' is not a branch name"
fi

IFS=',' read -r -a envs <<< "$ENVIRONMENTS"
[ "${#envs[@]}" -gt 0 ] || die_usage "--environments is empty"
for env in "${envs[@]}"; do
  [[ "$env" =~ ^[A-Za-z0-9._-]{1,100}$ ]] \
    || die_usage "environment '$env' must be letters, digits, '.', '_' or '-' (as in --environments dev,staging,prod)"
done

# Each federated credential: name|subject.
credentials=()
for env in "${envs[@]}"; do
  credentials+=("github-env-${env//./-}|repo:${REPO}:environment:${env}")
done
if [ -n "$BRANCH" ]; then
  branch_name="${BRANCH//\//-}"
  credentials+=("github-branch-${branch_name//./-}|repo:${REPO}:ref:refs/heads/${BRANCH}")
fi

credential_json() {  # name subject -> the --parameters document (inputs are validated above)
  printf '{"name": "%s", "issuer": "%s", "subject": "%s", "description": "%s", "audiences": ["%s"]}' \
    "$1" "$ISSUER" "$2" "GitHub Actions of ${REPO} (HayMaker)" "$AUDIENCE"
}

if [ "$DRY_RUN" = true ]; then
  echo "# dry run: these commands would run (nothing is changed)"
  echo "az account show --subscription $SUBSCRIPTION --query tenantId --output tsv"
  echo "az ad app create --display-name '$APP_NAME' --sign-in-audience AzureADMyOrg --query appId --output tsv"
  echo "az ad sp create --id <appId> --query id --output tsv"
  for entry in "${credentials[@]}"; do
    echo "az ad app federated-credential create --id <appId> --parameters '$(credential_json "${entry%%|*}" "${entry#*|}")'"
  done
  exit 0
fi

command -v az >/dev/null 2>&1 \
  || die "the Azure CLI (az) is not on PATH: install it (https://learn.microsoft.com/cli/azure/install-azure-cli)"
TENANT="$(az account show --subscription "$SUBSCRIPTION" --query tenantId --output tsv 2>/dev/null)" \
  || die "cannot read subscription $SUBSCRIPTION: run \`az login\` as an account that can see it"
[ -n "$TENANT" ] || die "no tenant found for subscription $SUBSCRIPTION"

# The application: reuse one with this display name, refuse when the name is ambiguous.
mapfile -t existing < <(az ad app list --display-name "$APP_NAME" --query "[].appId" --output tsv)
if [ "${#existing[@]}" -gt 1 ]; then
  die "${#existing[@]} applications are named '$APP_NAME': pass --app-name with a unique name"
elif [ "${#existing[@]}" -eq 1 ] && [ -n "${existing[0]}" ]; then
  APP_ID="${existing[0]}"
  echo "application '$APP_NAME' exists: $APP_ID"
else
  APP_ID="$(az ad app create --display-name "$APP_NAME" --sign-in-audience AzureADMyOrg --query appId --output tsv)"
  echo "created application '$APP_NAME': $APP_ID"
fi

# Its service principal (what role assignments name).
if SP_ID="$(az ad sp show --id "$APP_ID" --query id --output tsv 2>/dev/null)" && [ -n "$SP_ID" ]; then
  echo "service principal exists: $SP_ID"
else
  SP_ID="$(az ad sp create --id "$APP_ID" --query id --output tsv)"
  echo "created service principal: $SP_ID"
fi

# The federated credentials.
mapfile -t present < <(az ad app federated-credential list --id "$APP_ID" --query "[].name" --output tsv)
for entry in "${credentials[@]}"; do
  name="${entry%%|*}"
  subject="${entry#*|}"
  if printf '%s\n' "${present[@]}" | grep -qxF "$name"; then
    echo "federated credential $name exists (subject $subject)"
    continue
  fi
  az ad app federated-credential create --id "$APP_ID" --parameters "$(credential_json "$name" "$subject")" --output none
  echo "created federated credential $name for $subject"
done

cat <<DONE

Set these GitHub Actions variables (repository level; override per environment where they differ).
They are identifiers, not secrets:

  gh variable set AZURE_CLIENT_ID --repo $REPO --body $APP_ID
  gh variable set AZURE_TENANT_ID --repo $REPO --body $TENANT
  gh variable set AZURE_SUBSCRIPTION_ID --repo $REPO --body $SUBSCRIPTION

The service principal's object id is $SP_ID: grant it the roles the deployments need
(docs/operations.md, "First-time setup"), for example:

  az role assignment create --assignee-object-id $SP_ID --assignee-principal-type ServicePrincipal \\
    --role Contributor --scope /subscriptions/$SUBSCRIPTION
DONE
