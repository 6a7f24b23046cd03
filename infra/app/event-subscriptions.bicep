// The two Event Grid subscriptions that feed chatft's functions. Deployed by the postdeploy hook
// (scripts/postdeploy.sh / .ps1), not by main.bicep: their webhook URLs carry the deployed
// functions' system keys, which exist only once the code is deployed and the host has started.
// Deployed into the app's resource group; the job-events subscription goes to the workspace's.
//
// Dead-lettering is on for both, with the system topic's own identity (no keys; rbac.bicep gives
// it write access to the dead-letter container). `az eventgrid system-topic event-subscription
// create` has no option for that, which is why the hook deploys this template instead.

@description('Host name of the function app, e.g. func-chatft-xxxx.azurewebsites.net.')
param functionAppHostName string

@secure()
@description('The host\'s blobs_extension system key (the Event Grid blob trigger\'s webhook).')
param blobsExtensionKey string

@secure()
@description('The host\'s eventgrid_extension system key (Event Grid trigger webhooks).')
param eventGridExtensionKey string

param storageSystemTopicName string
param workspaceSystemTopicName string
param workspaceResourceGroup string
param uploadContainer string
@description('Resource id of the storage account holding the dead-letter container.')
param deadLetterStorageAccountId string
param deadLetterContainer string

resource storageTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: storageSystemTopicName
}

// Uploads: BlobCreated under the upload container, *.jsonl only (the function ignores other names
// anyway; the filter saves the invocations). The webhook is the Event Grid blob trigger's:
// /runtime/webhooks/blobs?functionName=Host.Functions.<function>. Subject filters match without
// case (isSubjectCaseSensitive false), as the function matches .jsonl.
resource uploads 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: storageTopic
  name: 'chatft-uploads'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionAppHostName}/runtime/webhooks/blobs?functionName=Host.Functions.ingest_upload&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${uploadContainer}/'
      subjectEndsWith: '.jsonl'
      isSubjectCaseSensitive: false
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainer
        }
      }
    }
  }
}

// One subscription per function app on the workspace's topic, which several azd environments may share
// (workspace-topic.bicep): a fixed name would let the last environment's hook re-point the others' events.
// Event subscription names: 3-64 letters, digits and hyphens (Azure resource name rules).
var jobEventsSubscriptionName = 'chatft-jobs-${take(split(functionAppHostName, '.')[0], 52)}'

module jobEvents 'job-events-subscription.bicep' = {
  name: take('chatft-job-events-${split(functionAppHostName, '.')[0]}', 64)
  scope: resourceGroup(workspaceResourceGroup)
  params: {
    subscriptionName: jobEventsSubscriptionName
    functionAppHostName: functionAppHostName
    eventGridExtensionKey: eventGridExtensionKey
    workspaceSystemTopicName: workspaceSystemTopicName
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainer: deadLetterContainer
  }
}
