// Sandbox: the Azure OpenAI API in APIM, imported from the Azure OpenAI inference
// OpenAPI document, with the owner's managed-identity policy and the named values the
// policies in ../policies reference (see ../policies/README.md).
param apimName string

@description('Azure OpenAI endpoint, e.g. https://my-aoai.openai.azure.com/')
param openAiEndpoint string

param tpmLimit int
param monthlyTokenQuota int

@description('OpenAPI document of the Azure OpenAI data-plane (inference) API. APIM fetches it at deployment time.')
param openAiSpecUrl string = 'https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/specification/cognitiveservices/data-plane/AzureOpenAI/inference/stable/2024-10-21/inference.json'

resource apim 'Microsoft.ApiManagement/service@2024-06-01-preview' existing = {
  name: apimName
}

resource aoaiEndpointHost 'Microsoft.ApiManagement/service/namedValues@2024-06-01-preview' = {
  parent: apim
  name: 'aoai-endpoint-host'
  properties: {
    displayName: 'aoai-endpoint-host'
    value: replace(replace(openAiEndpoint, 'https://', ''), '/', '')
    secret: false
  }
}

resource tpmLimitValue 'Microsoft.ApiManagement/service/namedValues@2024-06-01-preview' = {
  parent: apim
  name: 'tpm-limit'
  properties: {
    displayName: 'tpm-limit'
    value: string(tpmLimit)
    secret: false
  }
}

resource monthlyTokenQuotaValue 'Microsoft.ApiManagement/service/namedValues@2024-06-01-preview' = {
  parent: apim
  name: 'monthly-token-quota'
  properties: {
    displayName: 'monthly-token-quota'
    value: string(monthlyTokenQuota)
    secret: false
  }
}

resource openAiApi 'Microsoft.ApiManagement/service/apis@2024-06-01-preview' = {
  parent: apim
  name: 'azure-openai'
  properties: {
    displayName: 'Azure OpenAI'
    path: 'openai'
    protocols: [
      'https'
    ]
    subscriptionRequired: true
    // Stock OpenAI SDKs send the key in `api-key`; the policy removes it before forwarding.
    subscriptionKeyParameterNames: {
      header: 'api-key'
      query: 'subscription-key'
    }
    format: 'openapi+json-link'
    value: openAiSpecUrl
    serviceUrl: '${openAiEndpoint}openai'
  }
}

// Owner's inbound policy. Swap for ../policies/inbound-all.xml to add the probe marker,
// token limit and token metrics (all its named values are created above).
resource openAiApiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-06-01-preview' = {
  parent: openAiApi
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: loadTextContent('../policies/managed-identity.xml')
  }
  dependsOn: [
    aoaiEndpointHost
    tpmLimitValue
    monthlyTokenQuotaValue
  ]
}

// A subscription for the synthetic probe (keys stay in APIM; fetch them with listSecrets).
resource probeSubscription 'Microsoft.ApiManagement/service/subscriptions@2024-06-01-preview' = {
  parent: apim
  name: 'chargeback-probe'
  properties: {
    displayName: 'APIM Chargeback synthetic probe'
    scope: openAiApi.id
    state: 'active'
  }
}

output apiName string = openAiApi.name
output probeSubscriptionName string = probeSubscription.name
