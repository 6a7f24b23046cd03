#!/usr/bin/env bash
# azd postdeploy hook (azure.yaml; run it again with `azd hooks run postdeploy`).
#
# Creates the two Event Grid subscriptions that feed chatft's functions. They need the deployed
# host's system keys, so they cannot be part of `azd provision`:
#   uploads     storage system topic   -> /runtime/webhooks/blobs      (blobs_extension key)
#   job events  workspace system topic -> /runtime/webhooks/EventGrid  (eventgrid_extension key)
# Both are declared in infra/app/event-subscriptions.bicep (filters, retries, dead-lettering with
# the topics' own identities); this script fetches the keys and deploys that template.
# Every az call names azd's subscription (AZURE_SUBSCRIPTION_ID): az's own default may be another one.
# scripts/postdeploy.ps1 does the same on Windows.

# azd runs posix hooks with bash; re-run under bash if started by another shell.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="$root/infra/app/event-subscriptions.bicep"

# shellcheck source=scripts/hook-common.sh
source "$root/scripts/hook-common.sh"
require_tools
load_azd_env

: "${AZURE_FUNCTION_APP_NAME:?not set: run azd provision first}"
: "${RESOURCE_GROUP:?not set: run azd provision first}"
: "${STORAGE_SYSTEM_TOPIC_NAME:?not set: run azd provision first}"
: "${WORKSPACE_SYSTEM_TOPIC_NAME:?not set: run azd provision first}"
: "${AML_RESOURCE_GROUP:?not set: run azd provision first}"
: "${UPLOAD_CONTAINER:?not set: run azd provision first}"
: "${AZURE_STORAGE_ACCOUNT_ID:?not set: run azd provision first}"
: "${DEAD_LETTER_CONTAINER:?not set: run azd provision first}"
# The Azure CLI has its own login and default subscription, apart from azd's: check it can reach azd's.
require_az_login "azd hooks run postdeploy"

host_name="$(az functionapp show --name "$AZURE_FUNCTION_APP_NAME" --resource-group "$RESOURCE_GROUP" \
  --subscription "$subscription" --query defaultHostName --output tsv)"

system_key() {
  az functionapp keys list --name "$AZURE_FUNCTION_APP_NAME" --resource-group "$RESOURCE_GROUP" \
    --subscription "$subscription" --query "systemKeys.$1" --output tsv 2>/dev/null || true
}

# The host creates each extension's system key when it first starts with that extension loaded,
# which can take a minute or two after a deployment (asking for the keys starts the host).
blobs_key=""
eventgrid_key=""
for attempt in $(seq 1 30); do
  blobs_key="$(system_key blobs_extension)"
  eventgrid_key="$(system_key eventgrid_extension)"
  if [ -n "$blobs_key" ] && [ -n "$eventgrid_key" ]; then
    break
  fi
  echo "Waiting for $AZURE_FUNCTION_APP_NAME to create its blobs_extension and eventgrid_extension keys ($attempt/30)..."
  sleep 10
done
if [ -z "$blobs_key" ] || [ -z "$eventgrid_key" ]; then
  echo "Error: the host has no blobs_extension/eventgrid_extension system key yet. Check that the" >&2
  echo "deployment indexed ingest_upload and job_events (az functionapp function list), then run" >&2
  echo "'azd hooks run postdeploy' again." >&2
  exit 1
fi

# Creating a webhook subscription makes Event Grid send a validation request, which the host
# answers; a host still starting can miss it, so try a few times.
echo "Creating the Event Grid subscriptions (uploads -> ingest_upload, job events -> job_events)..."
for attempt in 1 2 3; do
  if az deployment group create \
    --name chatft-event-subscriptions \
    --resource-group "$RESOURCE_GROUP" \
    --subscription "$subscription" \
    --template-file "$template" \
    --parameters \
      functionAppHostName="$host_name" \
      blobsExtensionKey="$blobs_key" \
      eventGridExtensionKey="$eventgrid_key" \
      storageSystemTopicName="$STORAGE_SYSTEM_TOPIC_NAME" \
      workspaceSystemTopicName="$WORKSPACE_SYSTEM_TOPIC_NAME" \
      workspaceResourceGroup="$AML_RESOURCE_GROUP" \
      uploadContainer="$UPLOAD_CONTAINER" \
      deadLetterStorageAccountId="$AZURE_STORAGE_ACCOUNT_ID" \
      deadLetterContainer="$DEAD_LETTER_CONTAINER" \
    --output none; then
    echo "Event Grid subscriptions created: chatft-uploads on $STORAGE_SYSTEM_TOPIC_NAME, chatft-jobs-$AZURE_FUNCTION_APP_NAME on $WORKSPACE_SYSTEM_TOPIC_NAME."
    echo "Upload a file:"
    echo "  az storage blob upload --subscription $subscription --auth-mode login --account-name ${AZURE_STORAGE_ACCOUNT_NAME:-<account>} \\"
    echo "    --container-name $UPLOAD_CONTAINER --name demo/chat_sample.jsonl --file samples/chat_sample.jsonl"
    exit 0
  fi
  echo "Creating the subscriptions failed (attempt $attempt/3); retrying in 30 s..." >&2
  sleep 30
done
echo "Error: could not create the Event Grid subscriptions; see docs/troubleshooting.md." >&2
exit 1
