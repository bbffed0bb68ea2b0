// APIM Chargeback - infrastructure entry point (azd: `azd up` / `azd provision`).
//
// Resource-group scope: azd asks for (or reads AZURE_RESOURCE_GROUP) the target group.
// Deploys a Python 3.11 Function App on Flex Consumption with a system-assigned identity,
// identity-only storage (no shared keys), Key Vault (RBAC) for secrets, Application
// Insights + Log Analytics, least-privilege role assignments, and diagnostic settings
// that route APIM / Azure OpenAI logs to Log Analytics.
//
// Optional sandbox (deploySandbox=true): an APIM instance and an Azure OpenAI account with
// one model deployment, wired together with the owner's managed-identity policy.
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('azd environment name; used to derive resource names and the azd-env-name tag.')
param environmentName string

@description('Where token counts come from: llmlog (ApiManagementGatewayLlmLog), gatewaybody (logged response bodies) or auto.')
@allowed(['llmlog', 'gatewaybody', 'auto'])
param usageSource string = 'auto'

@description('APIM subscription used only by synthetic probes (its traffic is not charged); empty = none.')
param probeSubscriptionId string = ''

@minLength(1)
@description('Azure region for all resources. Must support Flex Consumption.')
param location string = resourceGroup().location

@description('Resource id of the Log Analytics workspace that holds (or will hold) the APIM logs. Empty = use the workspace this template creates.')
param apimLogAnalyticsWorkspaceId string = ''

@description('Resource ids of further Log Analytics workspaces holding APIM logs (one APIM per region, say). The app gets Log Analytics Reader on each, and one usage query covers them all (LOG_ANALYTICS_WORKSPACE_IDS).')
param additionalApimLogAnalyticsWorkspaceIds array = []

@description('Sum the usage of same-named subscriptions on every APIM service (APIM_SERVICES_MERGED). Default false: kept apart per service.')
param apimServicesMerged bool = false

@description('Name of an existing API Management instance to configure diagnostics on. Empty = skip (ignored when deploySandbox is true).')
param apimName string = ''

@description('Resource group of apimName. Empty = this resource group.')
param apimResourceGroupName string = ''

@description('Name of an existing Azure OpenAI account to route diagnostics from. Empty = skip (ignored when deploySandbox is true).')
param openAiAccountName string = ''

@description('Resource group of openAiAccountName. Empty = this resource group.')
param openAiResourceGroupName string = ''

@minValue(0)
@maxValue(8192)
@description('Bytes of frontend/backend response bodies APIM logs to GatewayLogs (APIM maximum is 8192).')
param apimResponseBodyBytes int = 8192

@description('Grant the function app "API Management Service Contributor" on the APIM instance (needed only for enforcement features that change APIM).')
param enableEnforcement bool = false

@description('Deploy a sandbox APIM + Azure OpenAI account (for end-to-end testing). Default false.')
param deploySandbox bool = false

@allowed([
  'Developer'
  'BasicV2'
])
@description('Sandbox APIM SKU. BasicV2 provisions in minutes; Developer can take 30-45 minutes.')
param sandboxApimSku string = 'BasicV2'

@description('Sandbox APIM publisher e-mail (required by APIM).')
param sandboxPublisherEmail string = 'noreply@example.com'

@description('Sandbox Azure OpenAI model deployment: model name.')
param sandboxModelName string = 'gpt-4o-mini'

@description('Sandbox Azure OpenAI model deployment: model version.')
param sandboxModelVersion string = '2024-07-18'

@minValue(1)
@description('Sandbox Azure OpenAI deployment capacity (thousands of tokens per minute).')
param sandboxModelCapacity int = 10

@minValue(1)
@description('Sandbox APIM named value tpm-limit (tokens per minute per subscription).')
param sandboxTpmLimit int = 10000

@minValue(1)
@description('Sandbox APIM named value monthly-token-quota (tokens per month per subscription).')
param sandboxMonthlyTokenQuota int = 5000000

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption instance memory size (MB).')
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
@description('Flex Consumption maximum instance count.')
param maximumInstanceCount int = 40

@secure()
@description('Value stored in Key Vault as the app setting API_KEY. azd fills it with $(secretOrRandomPassword ...). Empty = the secret is not (re)written.')
param apiKey string = ''

@description('Enable Key Vault purge protection (irreversible; blocks `azd down --purge` for the retention period).')
param keyVaultPurgeProtection bool = false

@description('Client id of the Entra ID app registration users sign in to. Set = App Service Authentication (Entra ID) in front of the app, API_AUTH=entra, TRUST_APP_SERVICE_AUTH=true, no function key; empty = the function key guards the API.')
param entraClientId string = ''

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------
var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  application: 'apim-chargeback'
}
var functionAppName = 'func-chargeback-${resourceToken}'
var storageAccountName = 'stcb${resourceToken}'
var keyVaultName = 'kv-cb-${resourceToken}'
var logAnalyticsName = 'log-chargeback-${resourceToken}'
var appInsightsName = 'appi-chargeback-${resourceToken}'
var planName = 'plan-chargeback-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}'
var apiKeySecretName = 'chargeback-api-key'
// The probe's APIM subscription key: store it in the vault yourself (the probe is off while PROBE_DEPLOYMENTS is '').
var probeKeySecretName = 'chargeback-probe-subscription-key'

// The workspace that holds APIM logs: the given one, or the one created here.
var apimLogsWorkspaceId = empty(apimLogAnalyticsWorkspaceId) ? resourceId('Microsoft.OperationalInsights/workspaces', logAnalyticsName) : apimLogAnalyticsWorkspaceId
var apimLogsWorkspaceParts = split(apimLogsWorkspaceId, '/')

// Effective APIM / Azure OpenAI targets for diagnostics (sandbox wins when deployed).
var sandboxApimName = 'apim-cb-${resourceToken}'
var sandboxOpenAiName = 'aoai-cb-${resourceToken}'
var effectiveApimName = deploySandbox ? sandboxApimName : apimName
var effectiveApimResourceGroup = deploySandbox || empty(apimResourceGroupName) ? resourceGroup().name : apimResourceGroupName
var effectiveOpenAiName = deploySandbox ? sandboxOpenAiName : openAiAccountName
var effectiveOpenAiResourceGroup = deploySandbox || empty(openAiResourceGroupName) ? resourceGroup().name : openAiResourceGroupName

// Sign-in: with an Entra client id, App Service Authentication admits callers (app/api-auth.bicep).
var entraSignIn = !empty(entraClientId)

// ---------------------------------------------------------------------------
// Monitoring, storage, secrets
// ---------------------------------------------------------------------------
module monitoring 'core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: logAnalyticsName
    applicationInsightsName: appInsightsName
  }
}

module storage 'core/storage/storage-account.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: storageAccountName
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'core/security/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    name: keyVaultName
    enablePurgeProtection: keyVaultPurgeProtection
    secretName: apiKeySecretName
    secretValue: apiKey
  }
}

// Log Analytics Reader for the app on the APIM-logs workspace (which may live in another
// resource group / subscription); also returns the workspace customerId for the app.
module apimLogsWorkspace 'core/monitor/workspace-reader.bicep' = {
  name: 'apim-logs-workspace-reader'
  scope: resourceGroup(apimLogsWorkspaceParts[2], apimLogsWorkspaceParts[4])
  params: {
    workspaceName: last(apimLogsWorkspaceParts)
    principalId: api.outputs.principalId
  }
  dependsOn: [
    monitoring
  ]
}

// The same for each further workspace with APIM logs (another region's gateway, say).
module additionalApimLogsWorkspaces 'core/monitor/workspace-reader.bicep' = [for (workspaceId, i) in additionalApimLogAnalyticsWorkspaceIds: {
  name: 'apim-logs-workspace-reader-${i}'
  scope: resourceGroup(split(workspaceId, '/')[2], split(workspaceId, '/')[4])
  params: {
    workspaceName: last(split(workspaceId, '/'))
    principalId: api.outputs.principalId
  }
}]

var additionalApimLogsCustomerIds = [for (workspaceId, i) in additionalApimLogAnalyticsWorkspaceIds: additionalApimLogsWorkspaces[i].outputs.customerId]

// ===========================================================================
// APP SETTINGS - one entry per setting in shared.settings.SETTINGS (non-local-only).
// tests/test_infra.py checks this block against the registry: add new settings HERE.
// Secrets must be Key Vault references: '@Microsoft.KeyVault(SecretUri=...)'.
// Host settings (AzureWebJobsStorage__*, APPLICATIONINSIGHTS_*) live in app/api-settings.bicep.
// ===========================================================================
var appSettings = {
  LOG_SOURCE: 'loganalytics'
  LOG_ANALYTICS_WORKSPACE_ID: apimLogsWorkspace.outputs.customerId
  LOG_ANALYTICS_WORKSPACE_IDS: join(additionalApimLogsCustomerIds, ',')
  APIM_SERVICES_MERGED: apimServicesMerged ? 'true' : 'false'
  LOG_ANALYTICS_ENDPOINT: 'https://api.loganalytics.io'
  LOG_QUERY_TIMEOUT_SECONDS: '180'
  LOG_QUERY_MAX_RETRIES: '3'
  TABLES_ENDPOINT: 'https://${storageAccountName}.table.${environment().suffixes.storage}'
  TABLE_PREFIX: 'chargeback'
  ROLLUP_SCHEDULE: '0 */15 * * * *'
  ROLLUP_LOOKBACK_MINUTES: '120'
  ROLLUP_INGESTION_DELAY_MINUTES: '5'
  ROLLUP_MAX_CHUNK_HOURS: '24'
  ROLLUP_MAX_LAG_MINUTES: '60'
  USAGE_SOURCE: usageSource
  PROBE_SUBSCRIPTION_ID: probeSubscriptionId
  PROBE_SCHEDULE: '0 */5 * * * *'
  PROBE_ENDPOINT: ''
  PROBE_API_VERSION: '2024-10-21'
  PROBE_DEPLOYMENTS: ''
  PROBE_SUBSCRIPTION_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/${probeKeySecretName})'
  PROBE_KEY_HEADER: 'api-key'
  PROBE_MARKER_HEADER: 'x-chargeback-probe'
  PROBE_STREAM: 'false'
  PROBE_TIMEOUT_SECONDS: '10'
  PROBE_MAX_RETRIES: '1'
  PROBE_BUDGET_SECONDS: '120'
  PROBE_FAILURE_THRESHOLD: '3'
  // entra only together with App Service Authentication (module apiAuth, applied before these settings)
  API_AUTH: entraSignIn ? 'entra' : 'functionkey'
  API_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/${apiKeySecretName})'
  PRICES_PATH: ''
  ADMIN_API_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/chargeback-admin-api-key)'
  ALERT_THRESHOLDS: '50,80,100'
  ANOMALY_DETECTION: 'true'
  ANOMALY_THRESHOLD: '4'
  ANOMALY_MIN_COST: '1.00'
  ALERT_WEBHOOK_URLS: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/chargeback-alert-webhook-urls)'
  ALERT_TEAMS_URLS: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/chargeback-alert-teams-urls)'
  ALERT_SLACK_URLS: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/chargeback-alert-slack-urls)'
  ENFORCEMENT_MODE: 'off'
  APIM_RESOURCE_ID: empty(effectiveApimName) ? '' : resourceId(effectiveApimResourceGroup, 'Microsoft.ApiManagement/service', effectiveApimName)
  // 'true' only with App Service Authentication (Entra ID) on the app: it strips client-sent
  // X-MS-CLIENT-PRINCIPAL* headers, so only then do they identify the caller.
  TRUST_APP_SERVICE_AUTH: entraSignIn ? 'true' : 'false'
  // Optional; an unresolved reference (secret not created) falls back to a key derived from API_KEY.
  PAGE_TOKEN_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/chargeback-page-token-secret)'
  // Deployment catalog and retail prices: the sync timers are registered only when their schedule is set.
  AOAI_ACCOUNT_IDS: ''
  ARM_ENDPOINT: environment().resourceManager
  DEPLOYMENT_SYNC_SCHEDULE: ''
  PRICE_SYNC_SCHEDULE: ''
  PRICE_SYNC_REGION: ''
  PRICE_SYNC_CURRENCY: 'USD'
  RETAIL_PRICES_URL: 'https://prices.azure.com/api/retail/prices'
  PTU_IDLE_COST: 'unallocated'
  PTU_RESERVATIONS: ''
  // FinOps outputs. COST_EXPORT_CONTAINER: the blob container (URL, optionally with a folder) where Cost
  // Management exports land; grant the app's identity Storage Blob Data Reader on it. Empty = reconciliation off.
  FOCUS_BILLING_ACCOUNT_ID: ''
  FOCUS_BILLING_ACCOUNT_NAME: ''
  COST_EXPORT_CONTAINER: ''
}
// ===========================================================================
// END APP SETTINGS
// ===========================================================================

// ---------------------------------------------------------------------------
// Function App (Flex Consumption) + its role assignments
// ---------------------------------------------------------------------------
module api 'app/api.bicep' = {
  name: 'api'
  params: {
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    name: functionAppName
    planName: planName
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

module apiRoles 'app/role-assignments.bicep' = {
  name: 'api-role-assignments'
  params: {
    principalId: api.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// App Service Authentication (Entra ID), only with an Entra client id. It is in place before the
// settings turn API_AUTH to entra (no function key): there is never a moment when the app trusts
// principal headers that nothing in front of it has checked.
module apiAuth 'app/api-auth.bicep' = if (entraSignIn) {
  name: 'api-auth'
  params: {
    functionAppName: api.outputs.name
    clientId: entraClientId
  }
}

// App settings are applied after the identity has its roles, so the host's first start
// can reach storage and resolve the Key Vault reference.
module apiSettings 'app/api-settings.bicep' = {
  name: 'api-settings'
  params: {
    functionAppName: api.outputs.name
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appSettings: appSettings
  }
  dependsOn: [
    apiRoles
    apimLogsWorkspace
    apiAuth
  ]
}

// Availability test of /api/health (503 when the rollup lags past ROLLUP_MAX_LAG_MINUTES). Only with
// Entra sign-in: /api/health is then open; with function keys it would need a key in the test's
// definition, readable by anyone who can read the test (docs/operations.md, "Monitoring").
module healthAvailabilityTest 'core/monitor/availability-test.bicep' = if (entraSignIn) {
  name: 'health-availability-test'
  params: {
    location: location
    tags: tags
    name: 'webtest-chargeback-health-${resourceToken}'
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    healthUrl: '${api.outputs.uri}/api/health'
  }
  dependsOn: [
    apiSettings
  ]
}

// ---------------------------------------------------------------------------
// Optional sandbox: APIM + Azure OpenAI
// ---------------------------------------------------------------------------
module sandbox 'app/sandbox.bicep' = if (deploySandbox) {
  name: 'sandbox'
  params: {
    location: location
    tags: tags
    apimName: sandboxApimName
    apimSku: sandboxApimSku
    publisherEmail: sandboxPublisherEmail
    openAiName: sandboxOpenAiName
    modelName: sandboxModelName
    modelVersion: sandboxModelVersion
    modelCapacity: sandboxModelCapacity
    tpmLimit: sandboxTpmLimit
    monthlyTokenQuota: sandboxMonthlyTokenQuota
  }
}

// ---------------------------------------------------------------------------
// Diagnostics: APIM -> Log Analytics (resource-specific), Azure OpenAI -> Log Analytics
// ---------------------------------------------------------------------------
module apimDiagnostics 'core/monitor/apim-diagnostics.bicep' = if (!empty(effectiveApimName)) {
  name: 'apim-diagnostics'
  scope: resourceGroup(effectiveApimResourceGroup)
  params: {
    apimName: effectiveApimName
    workspaceId: apimLogsWorkspaceId
    responseBodyBytes: apimResponseBodyBytes
  }
  dependsOn: [
    sandbox
    monitoring
  ]
}

module openAiDiagnostics 'core/monitor/openai-diagnostics.bicep' = if (!empty(effectiveOpenAiName)) {
  name: 'openai-diagnostics'
  scope: resourceGroup(effectiveOpenAiResourceGroup)
  params: {
    openAiName: effectiveOpenAiName
    workspaceId: apimLogsWorkspaceId
  }
  dependsOn: [
    sandbox
    monitoring
  ]
}

module apimEnforcementRole 'app/apim-enforcement-role.bicep' = if (enableEnforcement && !empty(effectiveApimName)) {
  name: 'apim-enforcement-role'
  scope: resourceGroup(effectiveApimResourceGroup)
  params: {
    apimName: effectiveApimName
    principalId: api.outputs.principalId
  }
  dependsOn: [
    sandbox
  ]
}

// ---------------------------------------------------------------------------
// Outputs (azd writes these into .azure/<env>/.env)
// ---------------------------------------------------------------------------
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_FUNCTION_APP_URI string = api.outputs.uri
output CHARGEBACK_DASHBOARD_URL string = '${api.outputs.uri}/api/dashboard'
output CHARGEBACK_API_AUTH string = appSettings.API_AUTH
output AZURE_FUNCTION_APP_PRINCIPAL_ID string = api.outputs.principalId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_TABLES_ENDPOINT string = appSettings.TABLES_ENDPOINT
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.vaultUri
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = apimLogsWorkspaceId
output LOG_ANALYTICS_WORKSPACE_ID string = apimLogsWorkspace.outputs.customerId
output AZURE_APIM_NAME string = effectiveApimName
output AZURE_APIM_GATEWAY_URL string = deploySandbox ? sandbox.outputs.gatewayUrl : ''
output AZURE_OPENAI_NAME string = effectiveOpenAiName
output AZURE_OPENAI_DEPLOYMENT string = deploySandbox ? sandbox.outputs.deploymentName : ''
