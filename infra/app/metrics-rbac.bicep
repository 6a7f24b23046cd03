// The janitor's metrics role at SUBSCRIPTION scope (main.bicep: janitorMetricsScope = 'subscription').
//
// shared/azure/metrics.py reads the online endpoints' RequestsPerMinute with
// azure-monitor-querymetrics' MetricsClient.query_resources: the batch metrics:getBatch API, which
// is authorised at subscription level only. Its README asks for "Authorization to read metrics data
// at the Azure subscription level. For example, the Monitoring Reader role on the subscription"
// (https://learn.microsoft.com/python/api/overview/azure/monitor-querymetrics-readme). A role on
// the workspace or its resource group is refused (401/403), so this is the narrowest scope that
// works. Monitoring Reader only reads monitoring data; it changes nothing.
targetScope = 'subscription'

@description('The function app\'s user-assigned identity.')
param appPrincipalId string

var monitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05' // Monitoring Reader

// Monitoring Reader on the subscription: the batch metrics API checks the subscription (above).
resource janitorMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, appPrincipalId, monitoringReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}
