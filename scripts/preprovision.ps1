# azd preprovision hook on Windows (azure.yaml; runs before every `azd provision`/`azd up`; alone: `azd hooks run preprovision`).
#
# With an existing workspace (CHATFT_EXISTING_WORKSPACE), finds the workspace's Event Grid system topic
# if it already has one and records its name in CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC, which
# infra/main.parameters.json passes to the template to reuse. Azure allows one system topic per source.
# Every az call names azd's subscription (AZURE_SUBSCRIPTION_ID). scripts/preprovision.sh does the same
# with bash.

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

. (Join-Path $PSScriptRoot 'hook-common.ps1')
Assert-Tools
Import-AzdEnv

$workspace = $env:CHATFT_EXISTING_WORKSPACE
if (-not $workspace -or $env:CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC) {
    exit 0
}
# The template's default for the workspace's group: the environment's own (AZURE_RESOURCE_GROUP or rg-<env>).
$group = $env:CHATFT_EXISTING_WORKSPACE_RESOURCE_GROUP
if (-not $group) { $group = $env:AZURE_RESOURCE_GROUP }
if (-not $group) { $group = "rg-$($env:AZURE_ENV_NAME)" }

# The Azure CLI has its own login and default subscription, apart from azd's: check it can reach azd's.
$subscription = Get-AzdSubscription 'azd provision'

$sourceId = "/subscriptions/$subscription/resourceGroups/$group/providers/Microsoft.MachineLearningServices/workspaces/$workspace"
$topics = az eventgrid system-topic list --subscription $subscription --query "[?topicType=='Microsoft.MachineLearningServices.Workspaces'].{name: name, group: resourceGroup, source: source}" --output json | ConvertFrom-Json
$found = @($topics | Where-Object { $_.source -ieq $sourceId }) | Select-Object -First 1
if (-not $found) {
    Write-Host "Workspace $workspace has no Event Grid system topic yet: azd provision creates one."
    exit 0
}
if ($found.group -ine $group) {
    Write-Host "Error: workspace $workspace already has the Event Grid system topic $($found.name), in resource group $($found.group),"
    Write-Host "not in the workspace's ($group): the template can only reuse a topic beside the workspace. Move or delete it,"
    Write-Host "or add chatft's subscription to it by hand (docs/how-it-works.md, 'The Event Grid subscription you create')."
    exit 1
}
azd env set CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC $found.name
Write-Host "Workspace $workspace already has the Event Grid system topic $($found.name) (Azure allows one per source): this environment reuses it."
