// The app's custom role at SUBSCRIPTION scope: exactly the subscription-level reads the code makes.
//
// - Azure Monitor metrics: shared/azure/metrics.py reads the online endpoints' RequestsPerMinute with
//   azure-monitor-querymetrics' MetricsClient.query_resources, the batch metrics:getBatch API, which
//   is authorised at subscription level only ("Authorization to read metrics data at the Azure
//   subscription level", https://learn.microsoft.com/python/api/overview/azure/monitor-querymetrics-readme).
//   A role on the workspace or its resource group is refused (401/403).
// - VM sizes: compute.list_sizes() (shared/azure/azureml/client.py, the preflight's GPU count) calls
//   GET /subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{location}/vmSizes
//   (azure-ai-ml _restclient/arm_ml_service/operations/_operations.py), which is not under
//   workspaces/*, so AzureML Data Scientist on the workspace does not cover it.
//
// Monitoring Reader, used before, is */read over the whole subscription plus Log Analytics search and
// support tickets; this role holds the three actions above and nothing else (tests/test_infra.py
// lists every Azure call the app makes beside the action it needs and the role that grants it).
// Creating a custom role needs Microsoft.Authorization/roleDefinitions/write (Owner or User Access
// Administrator on the subscription), as assigning roles does.
targetScope = 'subscription'

@description('The function app\'s user-assigned identity.')
param appPrincipalId string

@description('Name of the azd environment: one role definition per environment.')
param environmentName string

@description('The environment\'s resource token, so the role name is unique in the tenant.')
param resourceToken string

// One definition per environment and subscription: its name (a GUID) is derived from both, so a
// re-run updates it in place and another environment gets its own.
resource appReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'chatft-app-reader')
  properties: {
    roleName: 'chatft app reader (${environmentName}, ${resourceToken})'
    description: 'chatft function app: read online endpoint request metrics (batch metrics API) and the VM sizes of a region. Nothing else.'
    type: 'CustomRole'
    assignableScopes: [
      subscription().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Insights/metrics/read'
          'Microsoft.Insights/metricDefinitions/read'
          'Microsoft.MachineLearningServices/locations/vmsizes/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// The custom role above on the subscription: the batch metrics API and the vmSizes list check the subscription.
resource appReaderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, appPrincipalId, appReader.id)
  properties: {
    roleDefinitionId: appReader.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}
