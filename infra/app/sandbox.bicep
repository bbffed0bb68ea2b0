// Sandbox (deploySandbox=true): APIM + Azure OpenAI wired the way the chargeback solution
// expects in production - callers use an APIM subscription key, APIM calls Azure OpenAI
// with its managed identity (owner's policy: ../policies/managed-identity.xml).
param location string
param tags object = {}
param apimName string

@allowed([
  'Developer'
  'BasicV2'
])
param apimSku string = 'BasicV2'

param publisherEmail string
param openAiName string
param modelName string
param modelVersion string
param modelCapacity int
param tpmLimit int
param monthlyTokenQuota int

module openAi '../core/ai/openai.bicep' = {
  name: 'sandbox-openai'
  params: {
    location: location
    tags: tags
    name: openAiName
    modelName: modelName
    modelVersion: modelVersion
    modelCapacity: modelCapacity
  }
}

module apimService '../core/gateway/apim.bicep' = {
  name: 'sandbox-apim'
  params: {
    location: location
    tags: tags
    name: apimName
    sku: apimSku
    publisherEmail: publisherEmail
  }
}

// APIM's identity may call the Azure OpenAI data plane (inference) - nothing more.
module apimOpenAiRole 'sandbox-openai-role.bicep' = {
  name: 'sandbox-apim-openai-user'
  params: {
    openAiName: openAi.outputs.name
    principalId: apimService.outputs.principalId
  }
}

module openAiApi 'sandbox-api.bicep' = {
  name: 'sandbox-openai-api'
  params: {
    apimName: apimService.outputs.name
    openAiEndpoint: openAi.outputs.endpoint
    tpmLimit: tpmLimit
    monthlyTokenQuota: monthlyTokenQuota
  }
}

output apimName string = apimService.outputs.name
output gatewayUrl string = apimService.outputs.gatewayUrl
output openAiName string = openAi.outputs.name
output deploymentName string = openAi.outputs.deploymentName
output probeSubscriptionName string = openAiApi.outputs.probeSubscriptionName
