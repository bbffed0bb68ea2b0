// APIM -> Log Analytics, as the chargeback rollup needs it.
//
// 1. Azure Monitor diagnostic setting, resource-specific mode ('Dedicated'): GatewayLogs
//    lands in ApiManagementGatewayLogs and GatewayLlmLogs in ApiManagementGatewayLlmLog
//    (with 'AzureDiagnostics' mode both would go to the legacy AzureDiagnostics table).
// 2. APIM's own service-level diagnostic 'azuremonitor' (what the gateway logs and how):
//    100% sampling (chargeback must see every call), the probe marker header, response
//    body bytes, and LLM logging (token counts per request, streaming included).
//
// API version note: `largeLanguageModel` on Microsoft.ApiManagement/service/diagnostics
// first appears in the 2024-06-01-preview API and is carried in later previews /
// 2024-10-01-preview; older API versions reject or drop it. This could not be verified
// against a Bicep compiler or ARM here (offline): if a deployment reports the property
// as unknown, bump the API version below or enable "Log LLM messages" in the portal
// (API > Settings > Diagnostic logs > Azure Monitor).
param apimName string
param workspaceId string

@minValue(0)
@maxValue(8192)
@description('Bytes of frontend/backend response bodies to log (APIM maximum 8192).')
param responseBodyBytes int = 8192

@description('Request headers APIM writes to ApiManagementGatewayLogs.RequestHeaders.')
param loggedRequestHeaders array = [
  'x-chargeback-probe'
]

@allowed([
  'none'
  'all'
])
@description('Log prompt/completion text in ApiManagementGatewayLlmLog. Token counts are logged either way; chargeback needs only the counts.')
param llmMessages string = 'none'

resource apim 'Microsoft.ApiManagement/service@2024-06-01-preview' existing = {
  name: apimName
}

resource apimToLogAnalytics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'chargeback-log-analytics'
  scope: apim
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'GatewayLogs'
        enabled: true
      }
      {
        category: 'GatewayLlmLogs'
        enabled: true
      }
    ]
  }
}

// Built-in Azure Monitor logger (APIM creates it on first use; declaring it is idempotent).
resource azureMonitorLogger 'Microsoft.ApiManagement/service/loggers@2024-06-01-preview' = {
  parent: apim
  name: 'azuremonitor'
  properties: {
    loggerType: 'azureMonitor'
    isBuffered: true
  }
}

resource azureMonitorDiagnostic 'Microsoft.ApiManagement/service/diagnostics@2024-06-01-preview' = {
  parent: apim
  name: 'azuremonitor'
  properties: {
    loggerId: azureMonitorLogger.id
    alwaysLog: 'allErrors'
    logClientIp: true
    verbosity: 'information'
    sampling: {
      samplingType: 'fixed'
      percentage: 100
    }
    frontend: {
      request: {
        headers: loggedRequestHeaders
        body: {
          bytes: 0
        }
      }
      response: {
        headers: []
        body: {
          bytes: responseBodyBytes
        }
      }
    }
    backend: {
      request: {
        headers: []
        body: {
          bytes: 0
        }
      }
      response: {
        headers: []
        body: {
          bytes: responseBodyBytes
        }
      }
    }
    largeLanguageModel: {
      logs: 'enabled'
      requests: {
        messages: llmMessages
        maxSizeInBytes: 262144
      }
      responses: {
        messages: llmMessages
        maxSizeInBytes: 262144
      }
    }
  }
}
