#!/usr/bin/env bash
# azd preprovision hook (azure.yaml; runs before every `azd provision`/`azd up`; alone: `azd hooks run preprovision`).
#
# With an existing workspace (CHATFT_EXISTING_WORKSPACE), finds the workspace's Event Grid system topic
# if it already has one and records its name in CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC, which
# infra/main.parameters.json passes to the template to reuse (infra/app/workspace-topic.bicep). "Only one
# Azure Event Grid system topic is allowed per source" (learn.microsoft.com/azure/event-grid/system-topics):
# a second azd environment on the workspace, or a topic someone made by hand, would otherwise fail the
# provision. Nothing to do for a workspace azd creates, or when the name is set already.
# Every az call names azd's subscription (AZURE_SUBSCRIPTION_ID). scripts/preprovision.ps1 does the same
# on Windows.

# azd runs posix hooks with bash; re-run under bash if started by another shell.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/hook-common.sh
source "$root/scripts/hook-common.sh"
require_tools
load_azd_env

workspace="${CHATFT_EXISTING_WORKSPACE:-}"
if [ -z "$workspace" ] || [ -n "${CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC:-}" ]; then
  exit 0
fi
# The template's default for the workspace's group: the environment's own (AZURE_RESOURCE_GROUP or rg-<env>).
group="${CHATFT_EXISTING_WORKSPACE_RESOURCE_GROUP:-${AZURE_RESOURCE_GROUP:-rg-${AZURE_ENV_NAME:-}}}"

# The Azure CLI has its own login and default subscription, apart from azd's: check it can reach azd's.
require_az_login "azd provision"

source_id="/subscriptions/$subscription/resourceGroups/$group/providers/Microsoft.MachineLearningServices/workspaces/$workspace"
wanted="$(echo "$source_id" | tr '[:upper:]' '[:lower:]')"
found=""
while IFS=$'\t' read -r name topic_group topic_source; do
  if [ "$(echo "$topic_source" | tr '[:upper:]' '[:lower:]')" = "$wanted" ]; then
    found="$name"
    found_group="$topic_group"
  fi
done < <(az eventgrid system-topic list --subscription "$subscription" \
  --query "[?topicType=='Microsoft.MachineLearningServices.Workspaces'].[name, resourceGroup, source]" --output tsv)

if [ -z "$found" ]; then
  echo "Workspace $workspace has no Event Grid system topic yet: azd provision creates one."
  exit 0
fi
if [ "$(echo "$found_group" | tr '[:upper:]' '[:lower:]')" != "$(echo "$group" | tr '[:upper:]' '[:lower:]')" ]; then
  echo "Error: workspace $workspace already has the Event Grid system topic $found, in resource group $found_group," >&2
  echo "not in the workspace's ($group): the template can only reuse a topic beside the workspace. Move or delete it," >&2
  echo "or add chatft's subscription to it by hand (docs/how-it-works.md, 'The Event Grid subscription you create')." >&2
  exit 1
fi
azd env set CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC "$found"
echo "Workspace $workspace already has the Event Grid system topic $found (Azure allows one per source): this environment reuses it."
