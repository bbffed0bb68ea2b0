// Only deployed when enableEnforcement=true: lets the function app change APIM
// (e.g. suspend a subscription that exceeded its budget). Deployed at the APIM's
// resource group, scoped to the single APIM instance.
param apimName string
param principalId string

// Built-in role: API Management Service Contributor
var apimServiceContributorRoleId = '312a565d-c81f-4fd8-895a-4e21e48d571c'

resource apim 'Microsoft.ApiManagement/service@2024-06-01-preview' existing = {
  name: apimName
}

resource apimServiceContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(apim.id, principalId, apimServiceContributorRoleId)
  scope: apim
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', apimServiceContributorRoleId)
  }
}
