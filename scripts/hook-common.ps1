# Dot-sourced by the azd hooks (postdeploy.ps1, predown.ps1): what every hook does first. Not run alone.
# scripts/hook-common.sh is the same for bash.

# Fail, naming the prerequisite, when az or azd is missing.
function Assert-Tools {
    foreach ($tool in @('az', 'azd')) {
        if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) {
            Write-Host "Error: $tool is not installed; see docs/deploy.md, 'Before you start'."
            exit 1
        }
    }
}

# Set the azd environment's values (`azd env get-values`: KEY="value" lines) in this process.
function Import-AzdEnv {
    Write-Host 'Loading the azd environment...'
    foreach ($line in (& azd env get-values)) {
        if ($line -match '^([^=]+)=(.*)$') {
            $value = $Matches[2] -replace '^"|"$', ''
            [Environment]::SetEnvironmentVariable($Matches[1], $value)
        }
    }
}

# azd's subscription, once the Azure CLI (its own login and default subscription) is shown to reach it:
# one line naming `az login` when it cannot. $Again: what to run again after signing in.
function Get-AzdSubscription([string]$Again) {
    $subscription = $env:AZURE_SUBSCRIPTION_ID
    if (-not $subscription) {
        Write-Host "Error: AZURE_SUBSCRIPTION_ID is not set in this azd environment: run 'azd env set AZURE_SUBSCRIPTION_ID <id>'."
        exit 1
    }
    az account show --subscription $subscription --query id --output tsv 2>$null | Out-Null
    if ($LASTEXITCODE -ne 0) {
        Write-Host "Error: the Azure CLI is not signed in to subscription $subscription (azd's): run 'az login', then '$Again'."
        exit 1
    }
    return $subscription
}
