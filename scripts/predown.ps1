# azd predown hook on Windows (azure.yaml; runs before `azd down` deletes anything; alone: `azd hooks run predown`).
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
# Every az call names azd's subscription (AZURE_SUBSCRIPTION_ID). scripts/predown.sh does the same
# with bash.

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = Split-Path -Parent $PSScriptRoot
Set-Location $root
$retireWaitMinutes = 30

. (Join-Path $PSScriptRoot 'hook-common.ps1')
Assert-Tools
Import-AzdEnv

$workspace = $env:AML_WORKSPACE
if (-not $workspace) {
    Write-Host 'No Azure ML workspace is recorded in this environment (AML_WORKSPACE): nothing to delete first.'
    exit 0
}
if ($env:CHATFT_EXISTING_WORKSPACE -or "$env:AML_WORKSPACE_CREATED".ToLower() -ne 'true') {
    Write-Host "Workspace $workspace was not created by this environment: it stays, with what chatft made in it"
    Write-Host "(endpoints, models, datastore, compute, role assignments); see docs/deploy.md, 'Tear down: azd down'."
    exit 0
}
$resourceGroup = $env:AML_RESOURCE_GROUP
if (-not $resourceGroup) {
    Write-Host 'Error: AML_RESOURCE_GROUP is not set: run azd provision first.'
    exit 1
}
# The Azure CLI has its own login and default subscription, apart from azd's: check it can reach azd's.
$subscription = Get-AzdSubscription 'azd down'

# Already gone (an earlier `azd down` stopped after this step): nothing to delete.
$shown = az ml workspace show --name $workspace --resource-group $resourceGroup --subscription $subscription --query name --output tsv 2>&1
if ($LASTEXITCODE -ne 0) {
    if ("$shown" -match 'ResourceNotFound|ResourceGroupNotFound|was not found|could not be found') {
        Write-Host "Workspace $workspace is already gone: nothing to delete first."
        exit 0
    }
    Write-Host "$shown"
    Write-Host "Error: cannot read workspace $workspace (az ml workspace show, above); fix that, then run 'azd down' again."
    exit 1
}

$chatft = Join-Path $root '.venv/Scripts/chatft.exe'
if (-not (Test-Path $chatft)) {
    $found = Get-Command chatft -ErrorAction SilentlyContinue
    $chatft = if ($found) { $found.Source } else { '' }
}
if ($chatft) {
    Write-Host "Retiring the endpoints chatft created in $workspace (chatft retire-all)..."
    & $chatft retire-all --env $env:AZURE_ENV_NAME --reason 'azd down' --wait $retireWaitMinutes
    if ($LASTEXITCODE -ne 0) {
        Write-Host "Error: not every endpoint could be retired (above); nothing was deleted. Fix that, then run 'azd down' again."
        exit 1
    }
}
else {
    Write-Host "Note: the chatft CLI is not installed here ('make setup', or 'pip install -e .' in $root), so its endpoints"
    Write-Host 'are not retired one by one (no report, no lifecycle event): deleting the workspace deletes them with it.'
}

Write-Host "Deleting workspace $workspace permanently (az ml workspace delete --permanently-delete)..."
az ml workspace delete --name $workspace --resource-group $resourceGroup --subscription $subscription --permanently-delete --yes --output none
if ($LASTEXITCODE -ne 0) {
    Write-Host "Error: could not delete workspace $workspace (above); nothing else was deleted. Run 'azd down' again."
    exit 1
}
Write-Host "Workspace $workspace is permanently deleted; azd down now deletes the rest."
