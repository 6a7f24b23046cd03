// Role assignments in the app's resource group, each at the narrowest scope that works, with the
// reason. (The app's role on the workspace is in aml.bicep; the janitor's metrics role in
// metrics-rbac.bicep or metrics-rbac-workspace.bicep.) Principal ids arrive as parameters, so the
// assignment names are known when the deployment starts.
param storageAccountName string
param appInsightsName string
param uploadContainerName string
param preparedContainerName string
param deadLetterContainerName string
param ledgerTableName string
@description('The function app\'s user-assigned identity.')
param appPrincipalId string
@description('The person (or pipeline) running azd; empty: none.')
param userPrincipalId string = ''
param userPrincipalType string = 'User'
@description('System-assigned identities of the two Event Grid system topics (dead-lettering).')
param storageTopicPrincipalId string
param workspaceTopicPrincipalId string
@description('System-assigned identity of the Azure ML workspace; empty if it has none.')
param workspacePrincipalId string = ''
@description('System-assigned identity of the GPU cluster; empty when there is none.')
param computePrincipalId string = ''

// Built-in role definition ids (tests/test_infra.py checks each against the name in its comment).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // Storage Blob Data Reader
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource uploadContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: uploadContainerName
}

resource preparedContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: preparedContainerName
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: ledgerTableName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// ---- The function app's identity ----

// Storage Blob Data Owner on the account: the host's own storage (AzureWebJobsStorage: the Flex
// package, timer locks, keys, blob receipts, in containers the host creates itself) and the blob
// trigger require Owner; the app also reads uploads and writes the prepared container (creating it
// if missing). The host's containers are created at run time, so no container scope covers them.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor on the account: the blob trigger moves a blob that failed five
// times to the webjobs-blobtrigger-poison queue, which the host creates when first needed.
resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor on the account: the ledger (LEDGER_TABLE). The adapter calls
// create_table_if_not_exists, an account-level operation, so a role on the table alone would
// refuse it.
resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher on Application Insights: local auth is off, so the host's telemetry
// is accepted only with an Entra ID token of this identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
resource appTelemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Azure ML's identities: read the prepared data through the identity-based datastore ----

// Storage Blob Data Reader on the prepared container for the workspace's identity: the datastore
// (serviceDataAccessAuthIdentity) previews and validates data with it. Read-only, one container.
resource workspaceReadsPrepared 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(workspacePrincipalId)) {
  name: guid(preparedContainer.id, workspacePrincipalId, storageBlobDataReader)
  scope: preparedContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: workspacePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Reader on the prepared container for the GPU cluster's identity: jobs on a
// cluster read their inputs with it. (A serverless job that reads as its submitter uses the app
// identity, which has Blob Data Owner above.)
resource computeReadsPrepared 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(computePrincipalId)) {
  name: guid(preparedContainer.id, computePrincipalId, storageBlobDataReader)
  scope: preparedContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: computePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Event Grid: dead-lettering with the system topics' own identities (no keys) ----

// Storage Blob Data Contributor on the dead-letter container for the storage system topic: it
// writes BlobCreated events it could not deliver there. Write access to that container only.
resource storageTopicDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(storageTopicPrincipalId)) {
  name: guid(deadLetterContainer.id, storageTopicPrincipalId, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: storageTopicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor on the dead-letter container for the workspace system topic: the
// same for run events (a lost run event is also healed by the reconciler's poll, README).
resource workspaceTopicDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(workspaceTopicPrincipalId)) {
  name: guid(deadLetterContainer.id, workspaceTopicPrincipalId, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: workspaceTopicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- The person running azd: upload files, read reports, and run the chatft commands as themselves ----

// Storage Blob Data Contributor on the upload container: shared keys are off, so uploading needs
// a data role; this one reaches no other container.
resource userUploads 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(uploadContainer.id, userPrincipalId, storageBlobDataContributor)
  scope: uploadContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Storage Blob Data Contributor on the prepared container: read report.md and report.json, and let
// `chatft keep/release/retire/redeploy` (run as you) note what they did in the report; no other container.
resource userReports 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(preparedContainer.id, userPrincipalId, storageBlobDataContributor)
  scope: preparedContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Storage Table Data Contributor on the ledger table alone: `chatft status` reads it and `chatft
// keep/release/retire/redeploy` record what they did there; the commands never create tables, so no
// account-level role is needed.
resource userLedger 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(ledgerTable.id, userPrincipalId, storageTableDataContributor)
  scope: ledgerTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}
