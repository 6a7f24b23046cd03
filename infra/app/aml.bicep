// What chatft needs inside the Azure ML workspace (a new one, or an existing one): deployed to
// the workspace's resource group.
//  - the datastore AML_DATASTORE on the prepared container, identity-based (no credentials stored);
//  - an optional GPU cluster (FINETUNE_COMPUTE), when main.bicep's gpuClusterVmSize asks for one;
//  - the app identity's role on the workspace.
param workspaceName string
param datastoreName string
param storageAccountName string
param storageResourceGroupName string
param preparedContainerName string
param appPrincipalId string
param createGpuCluster bool
param gpuClusterName string
param gpuClusterVmSize string
param gpuClusterMaxNodes int

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

// Identity-based: `credentials: None`, so whoever reads the data uses its own identity. Which one
// depends on the job's identity setting and the compute (the cluster's identity on a cluster; on
// serverless compute the submitter's, i.e. the app's, or the workspace's; the workspace's in the
// studio), so all of them can read the prepared container (rbac.bicep).
module datastore 'br/public:avm/res/machine-learning-services/workspace/datastore:0.1.0' = {
  name: 'chatft-datastore'
  params: {
    name: datastoreName
    machineLearningWorkspaceName: workspace.name
    properties: {
      datastoreType: 'AzureBlob'
      accountName: storageAccountName
      containerName: preparedContainerName
      endpoint: environment().suffixes.storage
      protocol: 'https'
      subscriptionId: subscription().subscriptionId
      resourceGroup: storageResourceGroupName
      credentials: {
        credentialsType: 'None'
      }
      serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
      description: 'chatft prepared uploads: <dataset>/<sha256[:16]>/{train,validation,test}.jsonl'
    }
  }
}

// Optional GPU cluster. It scales to zero nodes, so it bills only while a job runs.
module gpuCluster 'br/public:avm/res/machine-learning-services/workspace/compute:0.1.0' = if (createGpuCluster) {
  name: 'chatft-gpu-cluster'
  params: {
    name: gpuClusterName
    machineLearningWorkspaceName: workspace.name
    location: workspace.location
    computeLocation: workspace.location
    sku: 'Basic'
    computeType: 'AmlCompute'
    description: 'chatft fine-tuning (FINETUNE_COMPUTE)'
    disableLocalAuth: true
    managedIdentities: {
      systemAssigned: true
    }
    properties: {
      vmSize: gpuClusterVmSize
      vmPriority: 'Dedicated'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: gpuClusterMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT10M'
      }
    }
  }
}

var azureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121' // AzureML Data Scientist

// AzureML Data Scientist on the workspace: read computes and their sizes, submit pipeline jobs,
// register models, create, update and delete online endpoints and deployments, read endpoint
// keys. It cannot create or delete compute or change the workspace, which chatft never does. The
// workspace is the narrowest scope that holds all of these (jobs, models and endpoints are its
// children).
resource appOnWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appPrincipalId, azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMLDataScientist)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output workspaceId string = workspace.id
output workspaceLocation string = workspace.location
output workspacePrincipalId string = workspace.?identity.?principalId ?? ''
output computePrincipalId string = createGpuCluster ? (gpuCluster!.outputs.?systemAssignedMIPrincipalId ?? '') : ''
