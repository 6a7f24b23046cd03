// The workspace's run events, to the job_events function (Event Grid trigger webhook:
// /runtime/webhooks/EventGrid?functionName=<function>). Deployed by event-subscriptions.bicep into
// the workspace's resource group, where its system topic is.
param functionAppHostName string

@description('Name of the subscription: one per function app, since environments may share the topic.')
param subscriptionName string

@secure()
param eventGridExtensionKey string

param workspaceSystemTopicName string
param deadLetterStorageAccountId string
param deadLetterContainer string

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: workspaceSystemTopicName
}

// Both event types are needed: failed and canceled jobs emit only RunStatusChanged.
//
// Advanced filters keep child steps (azureml.StepRun) and other people's jobs away from the
// function: only our parent pipeline runs, tagged chatft_managed=true (tag keys have no dots so
// that Event Grid can address them). The function checks the same again, so the filters only save
// invocations. Their risk: if Azure ML ever sent a run event without runTags, or named the run type
// differently, Event Grid would drop it silently. Nothing is lost for good: the deploy_reconciler
// polls every upload still `submitted` after JOB_POLL_QUIET_MINUTES (15) and settles a finished job
// exactly as its event would, so an upload then goes live about 15 minutes later.
resource jobEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: workspaceTopic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionAppHostName}/runtime/webhooks/EventGrid?functionName=job_events&code=${eventGridExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.RunCompleted'
        'Microsoft.MachineLearningServices.RunStatusChanged'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.runType'
          values: [
            'azureml.PipelineRun'
          ]
        }
        {
          operatorType: 'StringIn'
          key: 'data.runTags.chatft_managed'
          values: [
            'true'
          ]
        }
      ]
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
