#!/usr/bin/env bash
# azd predown hook (azure.yaml; runs before `azd down` deletes anything; alone: `azd hooks run predown`).
#
# Permanently deletes the Azure ML workspace this environment created, after retiring its endpoints.
# Azure ML soft-deletes a workspace and keeps its name taken for 14 days, and `azd down --purge` never
# purges workspaces, so the next `azd up` in this environment (same name, mlw-chatft-<token>) would
# fail until then. A workspace the environment did not create (CHATFT_EXISTING_WORKSPACE) is never
# touched: nothing here runs for it.
#
#   1. `chatft retire-all`: every endpoint chatft created, through the janitor's path (a kept one is
#      refused, which stops `azd down`), waiting until Azure ML has deleted them. Without the chatft
#      CLI the workspace delete takes its endpoints with it (they are hard-deleted with the workspace).
#   2. `az ml workspace delete --permanently-delete`, never `--all-resources` (that also deletes the
#      Application Insights and Log Analytics workspace the function app shares); `azd down` then
#      deletes the workspace's storage and key vault with the resource group.
# Every az call names azd's subscription (AZURE_SUBSCRIPTION_ID). scripts/predown.ps1 does the same
# on Windows.

# azd runs posix hooks with bash; re-run under bash if started by another shell.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
retire_wait_minutes=30

# shellcheck source=scripts/hook-common.sh
source "$root/scripts/hook-common.sh"
require_tools
load_azd_env

workspace="${AML_WORKSPACE:-}"
if [ -z "$workspace" ]; then
  echo "No Azure ML workspace is recorded in this environment (AML_WORKSPACE): nothing to delete first."
  exit 0
fi
if [ -n "${CHATFT_EXISTING_WORKSPACE:-}" ] || [ "$(echo "${AML_WORKSPACE_CREATED:-}" | tr '[:upper:]' '[:lower:]')" != "true" ]; then
  echo "Workspace $workspace was not created by this environment: it stays, with what chatft made in it"
  echo "(endpoints, models, datastore, compute, role assignments); see docs/deploy.md, 'Tear down: azd down'."
  exit 0
fi
: "${AML_RESOURCE_GROUP:?not set: run azd provision first}"
# The Azure CLI has its own login and default subscription, apart from azd's: check it can reach azd's.
require_az_login "azd down"

# Already gone (an earlier `azd down` stopped after this step): nothing to delete.
if ! shown="$(az ml workspace show --name "$workspace" --resource-group "$AML_RESOURCE_GROUP" \
  --subscription "$subscription" --query name --output tsv 2>&1)"; then
  if echo "$shown" | grep -qiE "ResourceNotFound|ResourceGroupNotFound|was not found|could not be found"; then
    echo "Workspace $workspace is already gone: nothing to delete first."
    exit 0
  fi
  echo "$shown" >&2
  echo "Error: cannot read workspace $workspace (az ml workspace show, above); fix that, then run 'azd down' again." >&2
  exit 1
fi

chatft="$root/.venv/bin/chatft"
[ -x "$chatft" ] || chatft="$(command -v chatft || true)"
if [ -n "$chatft" ]; then
  echo "Retiring the endpoints chatft created in $workspace (chatft retire-all)..."
  if ! "$chatft" retire-all --env "${AZURE_ENV_NAME:?not set: run azd env list}" --reason "azd down" \
    --wait "$retire_wait_minutes"; then
    echo "Error: not every endpoint could be retired (above); nothing was deleted. Fix that, then run 'azd down' again." >&2
    exit 1
  fi
else
  echo "Note: the chatft CLI is not installed here ('make setup', or 'pip install -e .' in $root), so its endpoints"
  echo "are not retired one by one (no report, no lifecycle event): deleting the workspace deletes them with it."
fi

echo "Deleting workspace $workspace permanently (az ml workspace delete --permanently-delete)..."
if ! az ml workspace delete --name "$workspace" --resource-group "$AML_RESOURCE_GROUP" \
  --subscription "$subscription" --permanently-delete --yes --output none; then
  echo "Error: could not delete workspace $workspace (above); nothing else was deleted. Run 'azd down' again." >&2
  exit 1
fi
echo "Workspace $workspace is permanently deleted; azd down now deletes the rest."
