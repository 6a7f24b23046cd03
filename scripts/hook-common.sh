# shellcheck shell=bash
# Sourced by the azd hooks (postdeploy.sh, predown.sh): what every hook does first. Not run alone.
# scripts/hook-common.ps1 is the same for PowerShell.

# Fail, naming the prerequisite, when az or azd is missing.
require_tools() {
  local cmd
  for cmd in az azd; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
      echo "Error: $cmd is not installed; see docs/deploy.md, 'Before you start'." >&2
      exit 1
    fi
  done
}

# Export the azd environment's values (`azd env get-values`: KEY="value" lines).
load_azd_env() {
  local key value
  echo "Loading the azd environment..."
  while IFS='=' read -r key value; do
    [ -n "$key" ] || continue
    value="${value#\"}"
    value="${value%\"}"
    export "$key=$value"
  done < <(azd env get-values)
}

# Set `subscription` to azd's, and check the Azure CLI (its own login and default subscription) can
# reach it: one line naming `az login` when it cannot. $1: what to run again after signing in.
require_az_login() {
  if [ -z "${AZURE_SUBSCRIPTION_ID:-}" ]; then
    echo "Error: AZURE_SUBSCRIPTION_ID is not set in this azd environment: run 'azd env set AZURE_SUBSCRIPTION_ID <id>'." >&2
    exit 1
  fi
  subscription="$AZURE_SUBSCRIPTION_ID"
  if ! az account show --subscription "$subscription" --query id --output tsv >/dev/null 2>&1; then
    echo "Error: the Azure CLI is not signed in to subscription $subscription (azd's): run 'az login', then '$1'." >&2
    exit 1
  fi
}
