// chatft on Azure: `azd up` provisions this file, deploys the function app, then runs the
// postdeploy hook (scripts/postdeploy.sh or .ps1), which creates the Event Grid subscriptions that
// need the deployed functions' system keys (app/event-subscriptions.bicep).
//
// Shape and habits follow Azure-Samples/functions-quickstart-python-azd-eventgrid-blob: one
// resource group, a user-assigned identity for the app, Flex Consumption, Azure Verified Modules
// for what that sample creates, identity-based connections only, no keys.
//
// tests/test_infra.py holds this file to the code: the app settings are exactly the ones
// shared/settings.py reads, role definition ids are the built-in ids of the roles their comments
// name, and the subscriptions target functions the app indexes.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; a short hash of it names every resource.')
param environmentName string

@minLength(1)
@description('Region for every resource. Flex Consumption must be available there (az functionapp list-flexconsumption-locations), and so must the GPU sizes you fine-tune and deploy on.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person (or principal) running azd. It gets blob access to the upload container (to upload) and the prepared container (to read reports). Empty: no such roles.')
param principalId string = deployer().objectId

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principalId: User for a person, ServicePrincipal when a pipeline runs azd.')
param principalType string = 'User'

@description('Optional names; empty means a generated name.')
param resourceGroupName string = ''
param functionAppName string = ''
param appIdentityName string = ''
param appServicePlanName string = ''
param storageAccountName string = ''
param logAnalyticsName string = ''
param applicationInsightsName string = ''

// ---- chatft ----

@allowed([
  'azure'
  'none'
])
@description('ML_BACKEND: azure fine-tunes and deploys on Azure ML; none only validates and prepares uploads. The local backend is for one machine and is not deployed.')
param mlBackend string = 'azure'

@description('Name of an existing Azure ML workspace in this subscription. Empty: a new workspace is created in the environment\'s resource group.')
param existingWorkspaceName string = ''

@description('Resource group of the existing workspace. Empty: the environment\'s resource group.')
param existingWorkspaceResourceGroup string = ''

@description('Name of the existing workspace\'s Event Grid system topic, in its resource group, when another azd environment (or anyone) already made one: Azure allows one system topic per source, so this environment reuses it. Empty: create one.')
param existingWorkspaceSystemTopicName string = ''

@description('VM size of a GPU compute cluster to create for fine-tuning (it scales to zero nodes when idle). Empty (the default): serverless compute, and no cluster is created.')
param gpuClusterVmSize string = ''

@maxLength(16)
@description('Name of that cluster; it becomes FINETUNE_COMPUTE. Empty (the default): cft-gpu-<token>, one per environment, so two environments on one existing workspace never re-size each other\'s cluster.')
param gpuClusterName string = ''

@minValue(1)
@description('Most nodes the cluster may scale to.')
param gpuClusterMaxNodes int = 1

@description('FINETUNE_MODEL: the foundation model in the azureml registry.')
param finetuneModel string = 'Phi-4'

@description('FINETUNE_INSTANCE_TYPE: the serverless VM size for fine-tuning (ignored when a cluster is created: its size is used).')
param finetuneInstanceType string = 'Standard_NC24ads_A100_v4'

@description('DEPLOY_INSTANCE_TYPE: the GPU size of each online deployment. Empty: the cheapest size the model recommends.')
param deployInstanceType string = ''

@description('JANITOR_IDLE_MINUTES: an endpoint with no requests for this long is deleted.')
param janitorIdleMinutes string = '120'

@description('JANITOR_MAX_AGE_HOURS: delete an endpoint of ours this many hours old whatever its traffic. Empty: no cap.')
param janitorMaxAgeHours string = ''

@description('GPU_HOURLY_PRICE_USD: USD per GPU hour for the report\'s training cost estimate. Empty: GPU hours only.')
param gpuHourlyPriceUsd string = ''

@description('MONTHLY_BUDGET_USD: at 100 % of the month\'s estimated spend new jobs and deployments wait (80 %: a warning event). Empty: no budget.')
param monthlyBudgetUsd string = ''

@description('EVAL_MIN_TOKEN_F1: an endpoint whose token F1 on held-out conversations is below this is retired at once. Empty: no gate.')
param evalMinTokenF1 string = ''

@description('DEPLOY_MAX_EVAL_LOSS: a model whose training ended with a higher eval_loss is registered but not deployed. Empty: no gate.')
param deployMaxEvalLoss string = ''

@description('JANITOR_DRY_RUN: true logs what the janitor would delete and deletes nothing.')
param janitorDryRun string = 'false'

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
// A compute name is 2-16 letters, digits and hyphens, unique in its workspace.
var gpuCluster = empty(gpuClusterName) ? 'cft-gpu-${take(resourceToken, 8)}' : gpuClusterName
var tags = { 'azd-env-name': environmentName }

var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}chatft-${resourceToken}'
// The Flex deployment package lives in a container of the app's own storage account.
var deploymentContainerName = 'app-package-${take(appName, 32)}-${take(resourceToken, 7)}'
var storageName = !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'

// Names the code uses. Containers and the table are created here, so nothing is created at run time.
var uploadContainerName = 'chat-uploads'
var preparedContainerName = 'chat-prepared'
var ledgerTableName = 'chatftledger'
var deadLetterContainerName = 'eventgrid-deadletter'
// One datastore per environment: two environments on one workspace must not re-point each other's.
// Datastore names are lowercase letters, digits and underscores, at most 255 (Azure resource name rules,
// learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftmachinelearningservices);
// resourceToken is 13 lowercase letters and digits.
var datastoreName = 'chatft_prepared_${resourceToken}'

var createWorkspace = empty(existingWorkspaceName)
var workspaceName = createWorkspace
  ? '${abbrs.machineLearningServicesWorkspaces}chatft-${resourceToken}'
  : existingWorkspaceName
var workspaceResourceGroupName = createWorkspace || empty(existingWorkspaceResourceGroup)
  ? rg.name
  : existingWorkspaceResourceGroup
var createGpuCluster = !empty(gpuClusterVmSize)

// The storage endpoints, built from the account name so they are known before the account exists.
var storageSuffix = environment().suffixes.storage
var blobEndpoint = 'https://${storageName}.blob.${storageSuffix}/'
var queueEndpoint = 'https://${storageName}.queue.${storageSuffix}/'
var tableEndpoint = 'https://${storageName}.table.${storageSuffix}/'

// Every setting shared/settings.py reads, and nothing else (tests/test_infra.py compares this
// object with the code, the README table and local.settings.sample.json). The Functions host's own
// settings (AzureWebJobsStorage__*, APPLICATIONINSIGHTS_*) are added in app/processor.bicep.
var chatftAppSettings = {
  // Identity-based storage connection: no connection string, no keys. The blob trigger needs the
  // queue service too (poison blobs), the ledger the table service.
  CHATFT_STORAGE__blobServiceUri: blobEndpoint
  CHATFT_STORAGE__queueServiceUri: queueEndpoint
  CHATFT_STORAGE__tableServiceUri: tableEndpoint
  CHATFT_STORAGE__credential: 'managedidentity'
  CHATFT_STORAGE__clientId: appIdentity.outputs.clientId
  // DefaultAzureCredential (Azure ML, Azure Monitor) picks the user-assigned identity from this.
  AZURE_CLIENT_ID: appIdentity.outputs.clientId
  UPLOAD_CONTAINER: uploadContainerName
  PREPARED_CONTAINER: preparedContainerName
  // Flex Consumption supports only the Event Grid source for blob triggers.
  UPLOAD_TRIGGER_SOURCE: 'EventGrid'
  VALIDATION_STRICT: 'false'
  VALIDATION_DROP_INVALID: 'false'
  MAX_SEQ_TOKENS: '4096'
  MIN_TRAIN_ROWS: '10'
  SPLIT_FRACTIONS: '0.9,0.05,0.05'
  MAX_LINE_BYTES: '1048576'
  REPORT_EXAMPLES_PER_CODE: '20'
  DUPLICATE_CHECK_LIMIT: '100000'
  ML_BACKEND: mlBackend
  AML_SUBSCRIPTION_ID: subscription().subscriptionId
  AML_RESOURCE_GROUP: workspaceResourceGroupName
  AML_WORKSPACE: workspaceName
  // The public registry: readable by every identity, no role needed.
  AML_REGISTRY: 'azureml'
  AML_DATASTORE: datastoreName
  FINETUNE_MODEL: finetuneModel
  FINETUNE_COMPUTE: createGpuCluster ? gpuCluster : 'serverless'
  FINETUNE_INSTANCE_TYPE: createGpuCluster ? gpuClusterVmSize : finetuneInstanceType
  FINETUNE_OVERRIDES: '{}'
  EXPERIMENT_NAME: 'chatft-finetune'
  LEDGER_TABLE: ledgerTableName
  SUBMIT_CLAIM_TIMEOUT_SECONDS: '900'
  REGISTERED_MODEL_SUFFIX: ''
  DEPLOYMENT_NAME: 'demo'
  DEPLOY_INSTANCE_TYPE: deployInstanceType
  DEPLOY_DEADLINE_MINUTES: '120'
  SMOKE_TIMEOUT_SECONDS: '120'
  // The evaluation before `live` and its gates (README "Evaluation on held-out conversations"); empty: no gate.
  EVAL_SAMPLES: '50'
  EVAL_MIN_TOKEN_F1: evalMinTokenF1
  DEPLOY_MAX_EVAL_LOSS: deployMaxEvalLoss
  DEPLOY_RECONCILE_SCHEDULE: '0 */2 * * * *'
  JOB_POLL_QUIET_MINUTES: '15'
  JANITOR_SCHEDULE: '0 */15 * * * *'
  JANITOR_IDLE_MINUTES: janitorIdleMinutes
  JANITOR_DRY_RUN: janitorDryRun
  JANITOR_MAX_DELETES: '5'
  JANITOR_MAX_AGE_HOURS: janitorMaxAgeHours
  GPU_HOURLY_PRICE_USD: gpuHourlyPriceUsd
  // The guards (README "Guards"): jobs and endpoints at once, a runaway job's hours, the month's budget.
  MAX_ACTIVE_JOBS: '2'
  MAX_LIVE_ENDPOINTS: '2'
  DEPLOY_EVICT_IDLE: 'false'
  JOB_MAX_HOURS: '24'
  MONTHLY_BUDGET_USD: monthlyBudgetUsd
  // chatft's lifecycle events (README "Lifecycle events"): the custom topic below, published to as the app.
  EVENTS_TOPIC_ENDPOINT: eventsTopic.outputs.endpoint
  EVENTS_NAMESPACE_TOPIC: '' // the topic above is a basic custom topic, not a namespace's
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// The app's identity: storage, Azure ML, Azure Monitor and the host's own storage all see this one.
module appIdentity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'appIdentity'
  scope: rg
  params: {
    name: !empty(appIdentityName) ? appIdentityName : '${abbrs.managedIdentityUserAssignedIdentities}chatft-${resourceToken}'
    location: location
    tags: tags
  }
}

module appServicePlan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'appServicePlan'
  scope: rg
  params: {
    name: !empty(appServicePlanName) ? appServicePlanName : '${abbrs.webServerFarms}${resourceToken}'
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
    location: location
    tags: tags
  }
}

// One account holds the uploads, the prepared data (reports live beside it), the ledger, the
// dead-lettered events and what the host needs (the Flex package, timer locks). Shared keys are
// off: every client signs in with Entra ID.
module storage 'br/public:avm/res/storage/storage-account:0.8.3' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageName
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        { name: deploymentContainerName }
        { name: uploadContainerName }
        { name: preparedContainerName }
        { name: deadLetterContainerName }
      ]
    }
    tableServices: {
      tables: [
        { name: ledgerTableName }
      ]
    }
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

// Application Insights accepts only Entra ID-authenticated telemetry (local auth off).
module monitoring 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'monitoring'
  scope: rg
  params: {
    name: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

module processor 'app/processor.bicep' = {
  name: 'processor'
  scope: rg
  params: {
    name: appName
    location: location
    tags: tags
    serviceName: 'chatft'
    applicationInsightsName: monitoring.outputs.name
    appServicePlanId: appServicePlan.outputs.resourceId
    runtimeName: 'python'
    // The newest Python that Flex Consumption runs with remote build (3.14 is a preview without
    // it) and that pyproject.toml's requires-python admits.
    runtimeVersion: '3.13'
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityId: appIdentity.outputs.resourceId
    identityClientId: appIdentity.outputs.clientId
    appSettings: chatftAppSettings
  }
}

// ---- Azure ML: a new workspace, or the one named by existingWorkspaceName ----

// A new workspace's own dependencies. Its default storage holds the system datastores (job
// outputs, logs, the trained model); chatft's uploads never go there. Shared keys are off: the
// workspace reaches it with identities (systemDatastoresAuthMode below), so no key exists that
// a datastore's listSecrets (in AzureML Data Scientist) could hand out.
module workspaceStorage 'br/public:avm/res/storage/storage-account:0.8.3' = if (createWorkspace) {
  name: 'workspaceStorage'
  scope: rg
  params: {
    name: 'stml${resourceToken}'
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

module workspaceKeyVault 'br/public:avm/res/key-vault/vault:0.14.0' = if (createWorkspace) {
  name: 'workspaceKeyVault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    sku: 'standard'
    enableRbacAuthorization: true
    // So that `azd down --purge` can remove it.
    enablePurgeProtection: false
    publicNetworkAccess: 'Enabled'
  }
}

module workspace 'br/public:avm/res/machine-learning-services/workspace:0.14.0' = if (createWorkspace) {
  name: 'workspace'
  scope: rg
  params: {
    name: workspaceName
    location: location
    tags: tags
    sku: 'Basic'
    associatedStorageAccountResourceId: workspaceStorage.outputs.resourceId
    associatedKeyVaultResourceId: workspaceKeyVault.outputs.resourceId
    associatedApplicationInsightsResourceId: monitoring.outputs.resourceId
    managedIdentities: {
      systemAssigned: true
    }
    // The system datastores (workspaceblobstore, ...) authenticate with identities, not the storage
    // key (the storage above refuses keys). The module's API version, 2024-10-01-preview, has the
    // property; its @allowed spells the value 'Identity'.
    systemDatastoresAuthMode: 'Identity'
    publicNetworkAccess: 'Enabled'
  }
}

// With identity-based system datastores, whoever a job runs as reads and writes the workspace storage
// with its own role: the app (serverless jobs run as their submitter), the GPU cluster's identity,
// and you (job logs and outputs in the studio).
module workspaceStorageRbac 'app/workspace-storage-rbac.bicep' = if (createWorkspace) {
  name: 'workspaceStorageRbac'
  scope: rg
  params: {
    storageAccountName: workspaceStorage.outputs.name
    appPrincipalId: appIdentity.outputs.principalId
    computePrincipalId: aml.outputs.computePrincipalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

// The datastore on the prepared container, the optional GPU cluster, and the app's role on the
// workspace, in the workspace's resource group (new or existing).
module aml 'app/aml.bicep' = {
  name: 'chatft-aml-${resourceToken}'
  scope: resourceGroup(workspaceResourceGroupName)
  params: {
    workspaceName: workspaceName
    datastoreName: datastoreName
    storageAccountName: storage.outputs.name
    storageResourceGroupName: rg.name
    preparedContainerName: preparedContainerName
    appPrincipalId: appIdentity.outputs.principalId
    createGpuCluster: createGpuCluster
    gpuClusterName: gpuCluster
    gpuClusterVmSize: gpuClusterVmSize
    gpuClusterMaxNodes: gpuClusterMaxNodes
  }
  dependsOn: [
    workspace
  ]
}

// ---- Event Grid: one system topic per source; subscriptions come from the postdeploy hook ----

// Uploads: BlobCreated in the upload container, to the blob trigger's webhook. The identity
// writes undeliverable events to the dead-letter container.
module storageTopic 'br/public:avm/res/event-grid/system-topic:0.6.1' = {
  name: 'storageTopic'
  scope: rg
  params: {
    name: '${abbrs.eventGridSystemTopics}st-${resourceToken}'
    location: location
    tags: tags
    source: storage.outputs.resourceId
    topicType: 'Microsoft.Storage.StorageAccounts'
    managedIdentities: {
      systemAssigned: true
    }
  }
}

// Job events: the workspace's run events, to the job_events function. A system topic lives in its
// source's region and there can be only one per source, so an existing one is reused (app/workspace-topic.bicep).
module workspaceTopic 'app/workspace-topic.bicep' = {
  name: 'chatft-workspace-topic-${resourceToken}'
  scope: resourceGroup(workspaceResourceGroupName)
  params: {
    name: '${abbrs.eventGridSystemTopics}mlw-${resourceToken}'
    existingName: createWorkspace ? '' : existingWorkspaceSystemTopicName
    location: aml.outputs.workspaceLocation
    tags: tags
    workspaceId: aml.outputs.workspaceId
  }
}

// ---- Role assignments (each with the reason for its scope, in the module) ----

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.name
    uploadContainerName: uploadContainerName
    preparedContainerName: preparedContainerName
    deadLetterContainerName: deadLetterContainerName
    ledgerTableName: ledgerTableName
    appPrincipalId: appIdentity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    storageTopicPrincipalId: storageTopic.outputs.?systemAssignedMIPrincipalId ?? ''
    workspaceTopicPrincipalId: workspaceTopic.outputs.?systemAssignedMIPrincipalId ?? ''
    workspacePrincipalId: aml.outputs.workspacePrincipalId
    computePrincipalId: aml.outputs.computePrincipalId
  }
}

// The lifecycle events topic (CloudEvents 1.0, Entra ID only) and the app's EventGrid Data Sender role on it.
module eventsTopic 'app/events-topic.bicep' = {
  name: 'chatft-events-topic-${resourceToken}'
  scope: rg
  params: {
    name: '${abbrs.eventGridTopics}chatft-${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: appIdentity.outputs.principalId
  }
}

// The app's custom role on the subscription: request metrics (the batch metrics API is authorised at
// subscription level only) and a region's VM sizes, nothing else (app/metrics-rbac.bicep).
module metricsRbac 'app/metrics-rbac.bicep' = {
  name: 'chatft-metrics-rbac-${resourceToken}'
  params: {
    appPrincipalId: appIdentity.outputs.principalId
    environmentName: environmentName
    resourceToken: resourceToken
  }
}

// ---- Outputs: azd keeps them in .azure/<env>/.env for the postdeploy hook and for you ----

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = processor.outputs.name
output SERVICE_CHATFT_BASE_URL string = processor.outputs.baseUrl
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.resourceId
output UPLOAD_CONTAINER string = uploadContainerName
output PREPARED_CONTAINER string = preparedContainerName
output DEAD_LETTER_CONTAINER string = deadLetterContainerName
output STORAGE_SYSTEM_TOPIC_NAME string = storageTopic.outputs.name
output WORKSPACE_SYSTEM_TOPIC_NAME string = workspaceTopic.outputs.name
output AML_SUBSCRIPTION_ID string = subscription().subscriptionId
output AML_RESOURCE_GROUP string = workspaceResourceGroupName
output AML_WORKSPACE string = workspaceName
output EVENTS_TOPIC_NAME string = eventsTopic.outputs.name
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
// The app settings as one JSON string, so `chatft doctor --env <name>` checks exactly what the app was
// given (no secrets: names, endpoints and the identity's client id).
output CHATFT_APP_SETTINGS string = string(chatftAppSettings)
// Who this template gave roles to, so `chatft doctor` can tell a role it assigns (wait for it, or run
// `azd provision`) from one it does not (`az role assignment create`).
output DEPLOYER_PRINCIPAL_ID string = principalId
output APP_PRINCIPAL_ID string = appIdentity.outputs.principalId
// Whether this environment created the workspace (scripts/predown.sh deletes only such a one, permanently).
output AML_WORKSPACE_CREATED bool = createWorkspace
