# azd postdeploy hook on Windows (azure.yaml; run it again with `azd hooks run postdeploy`).
#
# Creates the two Event Grid subscriptions that feed chatft's functions. They need the deployed
# host's system keys, so they cannot be part of `azd provision`:
#   uploads     storage system topic   -> /runtime/webhooks/blobs      (blobs_extension key)
#   job events  workspace system topic -> /runtime/webhooks/EventGrid  (eventgrid_extension key)
# Both are declared in infra/app/event-subscriptions.bicep (filters, retries, dead-lettering with
# the topics' own identities); this script fetches the keys and deploys that template.
# Every az call names azd's subscription (AZURE_SUBSCRIPTION_ID): az's own default may be another one.
# scripts/postdeploy.sh does the same with bash.

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = Split-Path -Parent $PSScriptRoot
$template = Join-Path $root 'infra/app/event-subscriptions.bicep'

. (Join-Path $PSScriptRoot 'hook-common.ps1')
Assert-Tools
Import-AzdEnv

function Get-Required([string]$Name) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if (-not $value) {
        Write-Host "Error: $Name is not set: run azd provision first."
        exit 1
    }
    return $value
}

$appName = Get-Required 'AZURE_FUNCTION_APP_NAME'
$resourceGroup = Get-Required 'RESOURCE_GROUP'
$storageTopic = Get-Required 'STORAGE_SYSTEM_TOPIC_NAME'
$workspaceTopic = Get-Required 'WORKSPACE_SYSTEM_TOPIC_NAME'
$workspaceResourceGroup = Get-Required 'AML_RESOURCE_GROUP'
$uploadContainer = Get-Required 'UPLOAD_CONTAINER'
$storageAccountId = Get-Required 'AZURE_STORAGE_ACCOUNT_ID'
$deadLetterContainer = Get-Required 'DEAD_LETTER_CONTAINER'
$subscription = Get-AzdSubscription 'azd hooks run postdeploy'

$hostName = az functionapp show --name $appName --resource-group $resourceGroup --subscription $subscription --query defaultHostName --output tsv
if ($LASTEXITCODE -ne 0 -or -not $hostName) {
    Write-Host "Error: cannot read the host name of $appName."
    exit 1
}

function Get-SystemKey([string]$Name) {
    $key = az functionapp keys list --name $appName --resource-group $resourceGroup --subscription $subscription --query "systemKeys.$Name" --output tsv 2>$null
    if ($LASTEXITCODE -ne 0 -or -not $key) {
        return ''
    }
    return "$key".Trim()
}

# The host creates each extension's system key when it first starts with that extension loaded,
# which can take a minute or two after a deployment (asking for the keys starts the host).
$blobsKey = ''
$eventGridKey = ''
foreach ($attempt in 1..30) {
    $blobsKey = Get-SystemKey 'blobs_extension'
    $eventGridKey = Get-SystemKey 'eventgrid_extension'
    if ($blobsKey -and $eventGridKey) {
        break
    }
    Write-Host "Waiting for $appName to create its blobs_extension and eventgrid_extension keys ($attempt/30)..."
    Start-Sleep -Seconds 10
}
if (-not $blobsKey -or -not $eventGridKey) {
    Write-Host 'Error: the host has no blobs_extension/eventgrid_extension system key yet. Check that the'
    Write-Host "deployment indexed ingest_upload and job_events (az functionapp function list), then run"
    Write-Host "'azd hooks run postdeploy' again."
    exit 1
}

# Each element is one argument to az; the webhook URLs are built inside the template, so no '&'
# ever reaches the command line (cmd.exe would split on it).
$parameters = @(
    "functionAppHostName=$hostName",
    "blobsExtensionKey=$blobsKey",
    "eventGridExtensionKey=$eventGridKey",
    "storageSystemTopicName=$storageTopic",
    "workspaceSystemTopicName=$workspaceTopic",
    "workspaceResourceGroup=$workspaceResourceGroup",
    "uploadContainer=$uploadContainer",
    "deadLetterStorageAccountId=$storageAccountId",
    "deadLetterContainer=$deadLetterContainer"
)

# Creating a webhook subscription makes Event Grid send a validation request, which the host
# answers; a host still starting can miss it, so try a few times.
Write-Host 'Creating the Event Grid subscriptions (uploads -> ingest_upload, job events -> job_events)...'
foreach ($attempt in 1..3) {
    az deployment group create --name chatft-event-subscriptions --resource-group $resourceGroup --subscription $subscription --template-file $template --parameters $parameters --output none
    if ($LASTEXITCODE -eq 0) {
        Write-Host "Event Grid subscriptions created: chatft-uploads on $storageTopic, chatft-jobs-$($env:AZURE_FUNCTION_APP_NAME) on $workspaceTopic."
        Write-Host 'Upload a file:'
        Write-Host "  az storage blob upload --subscription $subscription --auth-mode login --account-name $env:AZURE_STORAGE_ACCOUNT_NAME --container-name $uploadContainer --name demo/chat_sample.jsonl --file samples/chat_sample.jsonl"
        exit 0
    }
    Write-Host "Creating the subscriptions failed (attempt $attempt/3); retrying in 30 s..."
    Start-Sleep -Seconds 30
}
Write-Host "Error: could not create the Event Grid subscriptions; see docs/troubleshooting.md."
exit 1
