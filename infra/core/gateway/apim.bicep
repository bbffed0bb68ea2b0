// API Management instance with a system-assigned identity (sandbox only).
param location string
param tags object = {}
param name string

@allowed([
  'Developer'
  'BasicV2'
])
param sku string = 'BasicV2'

param publisherEmail string
param publisherName string = 'APIM Chargeback sandbox'

resource apim 'Microsoft.ApiManagement/service@2024-06-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    capacity: 1
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
  }
}

output name string = apim.name
output id string = apim.id
output gatewayUrl string = apim.properties.gatewayUrl
output principalId string = apim.identity.principalId
