// Roles on the storage account of a workspace this template creates (main.bicep: workspaceStorage).
// That account refuses shared keys and the workspace uses identity-based system datastores
// (systemDatastoresAuthMode 'Identity'), so every identity that reads or writes the system datastores
// (workspaceblobstore: job outputs, logs, the trained model) needs a data role of its own
// ("Disable shared key access for your workspace's storage account", MicrosoftDocs azure-ai-docs
// articles/machine-learning/how-to-disable-local-auth-storage.md: users need Storage Blob Data
// Contributor, and a job's identity needs it for model inputs and outputs). The workspace's own
// identity and the online endpoints' identities are given their roles by Azure ML itself (same page,
// "Scenarios for role assignments"). An existing workspace's storage is left as it is.
param storageAccountName string
@description('The function app\'s user-assigned identity.')
param appPrincipalId string
@description('System-assigned identity of the GPU cluster; empty when there is none.')
param computePrincipalId string = ''
@description('The person (or pipeline) running azd; empty: none.')
param userPrincipalId string = ''
param userPrincipalType string = 'User'

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // Storage Blob Data Reader

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Storage Blob Data Contributor for the app's identity: a serverless job runs as its submitter (user
// credential passthrough, MicrosoftDocs azure-ai-docs how-to-use-serverless-compute.md), so the
// fine-tuning job writes its outputs and the trained model to workspaceblobstore as the app.
resource appWorkspaceBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageBlobDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor for the GPU cluster's identity: a job on the cluster writes its
// outputs with it.
resource computeWorkspaceBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(computePrincipalId)) {
  name: guid(storageAccount.id, computePrincipalId, storageBlobDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: computePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Reader for the person running azd: read job logs and outputs in the studio
// (Owner and Contributor hold no data actions, and there is no key to fall back on). Read only.
resource userWorkspaceBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storageAccount.id, userPrincipalId, storageBlobDataReader)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}
