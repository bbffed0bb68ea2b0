// Azure OpenAI account (keys disabled: Entra ID only) with one model deployment.
param location string
param tags object = {}
param name string
param modelName string
param modelVersion string

@minValue(1)
param modelCapacity int = 10

param deploymentSkuName string = 'GlobalStandard'

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name // required for Entra ID (token) authentication
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: openAi
  name: modelName
  sku: {
    name: deploymentSkuName
    capacity: modelCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

output name string = openAi.name
output id string = openAi.id
output endpoint string = openAi.properties.endpoint
output deploymentName string = deployment.name
