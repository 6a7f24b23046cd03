// The Azure ML workspace's Event Grid system topic, which carries its run events to job_events. Deployed
// to the workspace's resource group.
//
// "Only one Azure Event Grid system topic is allowed per source" (https://learn.microsoft.com/azure/event-grid/system-topics),
// so a second azd environment on the same existing workspace cannot create its own: it names the first one's
// topic (existingName, from CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC) and reuses it. Each environment still has
// its own event subscription on it (event-subscriptions.bicep names it after the function app), and the
// topic keeps the azd-env-name tag of the environment that made it (`chatft doctor` reports it).
@description('Name of the topic to create.')
param name string

@description('An existing system topic on the workspace to reuse instead; empty: create `name`.')
param existingName string = ''

param location string
param tags object = {}

@description('Resource id of the workspace (the topic\'s source).')
param workspaceId string

module created 'br/public:avm/res/event-grid/system-topic:0.6.1' = if (empty(existingName)) {
  name: '${deployment().name}-create'
  params: {
    name: name
    location: location
    tags: tags
    source: workspaceId
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
    // Dead-lettering writes with the topic's own identity (rbac.bicep).
    managedIdentities: {
      systemAssigned: true
    }
  }
}

resource reused 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = if (!empty(existingName)) {
  name: existingName
}

output name string = empty(existingName) ? created!.outputs.name : reused!.name
// Empty when a reused topic has no system-assigned identity: its subscription then fails to set up
// dead-lettering, and the README's troubleshooting says to turn the identity on.
output systemAssignedMIPrincipalId string = empty(existingName)
  ? (created!.outputs.?systemAssignedMIPrincipalId ?? '')
  : (reused!.?identity.?principalId ?? '')
