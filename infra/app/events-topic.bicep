// chatft's lifecycle events (shared/flows/lifecycle_events.py): an Event Grid custom topic that accepts
// CloudEvents 1.0 from Entra ID identities only (local auth, i.e. access keys, off), and the one role the
// app's identity needs to publish to it. Subscribe anything to it (README, "Lifecycle events").

@description('Topic name.')
param name string

param location string
param tags object = {}

@description('The function app\'s user-assigned identity.')
param appPrincipalId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

// EventGrid Data Sender on this topic only: publish events to it, nothing else (no reading, no managing).
resource appSends 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = topic.properties.endpoint
output name string = topic.name
