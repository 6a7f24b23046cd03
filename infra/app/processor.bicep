// The chatft function app on Flex Consumption (Linux), with its user-assigned identity.
// main.bicep passes the settings chatft reads; this module adds the host's own: its storage
// (AzureWebJobsStorage, identity-based) and Application Insights with Entra ID auth.
param name string
@description('Region of the app and its plan.')
param location string = resourceGroup().location
param tags object = {}
@description('The azd service name in azure.yaml: azd finds the app to deploy to by this tag.')
param serviceName string
param applicationInsightsName string
param appServicePlanId string
@description('The settings shared/settings.py reads.')
param appSettings object
param runtimeName string
param runtimeVersion string
param storageAccountName string
@description('Container of the Flex deployment package, in the app\'s storage account.')
param deploymentContainerName string
param identityId string
param identityClientId string
@description('Memory of each instance: ingest streams uploads in 1 MiB chunks, and azure-ai-ml loads on first use.')
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The Functions host's settings (not read by chatft's code; tests/test_infra.py lists them as such).
var hostSettings = {
  // The host's storage: timer locks, blob receipts, keys. Identity-based, like everything else.
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: stg.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: stg.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: stg.properties.primaryEndpoints.table
  // Telemetry is accepted only with an Entra ID token of the app's identity (local auth is off).
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
}

module app 'br/public:avm/res/web/site:0.15.1' = {
  name: '${serviceName}-flex-consumption'
  params: {
    kind: 'functionapp,linux'
    name: name
    location: location
    tags: union(tags, { 'azd-service-name': serviceName })
    serverFarmResourceId: appServicePlanId
    managedIdentities: {
      systemAssigned: false
      userAssignedResourceIds: [
        identityId
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${stg.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      // Flex takes the language and version here; FUNCTIONS_WORKER_RUNTIME is not an app setting on it.
      runtime: {
        name: runtimeName
        version: runtimeVersion
      }
    }
    // The module's default siteConfig (alwaysOn, minTlsVersion '1.2', ftpsState 'FtpsOnly') is replaced
    // whole by this object, so its hardening is restated here: TLS 1.2 at least and no FTP at all
    // (Flex Consumption has no always-on; azd deploys the package with Entra ID, not FTP).
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    // No basic (user name and password) publishing credentials for FTP or the SCM site: azd deploys
    // with Entra ID (Microsoft.Web/sites/basicPublishingCredentialsPolicies, allow false).
    basicPublishingCredentialsPolicies: [
      {
        name: 'ftp'
        allow: false
      }
      {
        name: 'scm'
        allow: false
      }
    ]
    appSettingsKeyValuePairs: union(appSettings, hostSettings)
  }
}

output name string = app.outputs.name
output resourceId string = app.outputs.resourceId
output baseUrl string = 'https://${app.outputs.defaultHostname}'
