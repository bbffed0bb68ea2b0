// Deployed at the scope of the Log Analytics workspace that holds the APIM logs
// (ApiManagementGatewayLogs / ApiManagementGatewayLlmLog), which may be in another
// resource group or subscription. Grants the function app read access to query it
// and returns the workspace customerId (the GUID the Log Analytics query API expects).
param workspaceName string
param principalId string

// Built-in role: Log Analytics Reader
var logAnalyticsReaderRoleId = '73c42c96-874c-492b-b04d-ab87d138a893'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource logAnalyticsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, logAnalyticsReaderRoleId)
  scope: workspace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReaderRoleId)
  }
}

output customerId string = workspace.properties.customerId
output workspaceId string = workspace.id
