// The janitor's metrics role on the WORKSPACE (main.bicep: janitorMetricsScope = 'workspace').
//
// For per-resource metrics (MetricsQueryClient.query_resource, one online endpoint at a time),
// which Azure Monitor authorises on the queried resource or any scope above it. The endpoints
// are children of the workspace, so the workspace is the narrowest scope that covers every
// endpoint chatft creates. Not used while the janitor calls the batch API (metrics-rbac.bicep).
param workspaceName string

@description('The function app\'s user-assigned identity.')
param appPrincipalId string

var monitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05' // Monitoring Reader

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

// Monitoring Reader on the workspace: read its online endpoints' request metrics, nothing else.
resource janitorMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appPrincipalId, monitoringReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}
