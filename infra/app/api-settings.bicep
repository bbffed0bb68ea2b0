// The function app's complete app-settings set (Microsoft.Web/sites/config 'appsettings'
// replaces the whole set): host settings below + the app's settings passed from main.bicep.
//
// Flex Consumption note: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT* are NOT set - on Flex they are replaced by
// functionAppConfig (app/api.bicep) and are rejected or ignored as app settings.
param functionAppName string
param storageAccountName string
param applicationInsightsName string

@description('App settings owned by the application (the marked block in main.bicep).')
param appSettings object

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Host settings: identity-based AzureWebJobsStorage (no keys) and Entra-authenticated
// Application Insights ingestion (the component has local auth disabled; the connection
// string carries no credential, only the ingestion endpoint and instrumentation id).
var hostSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(hostSettings, appSettings)
}
