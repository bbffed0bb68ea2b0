// Azure OpenAI -> Log Analytics. Cognitive Services accounts log to the AzureDiagnostics
// table (they do not offer resource-specific tables), so no destination type is set.
param openAiName string
param workspaceId string

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: openAiName
}

resource openAiToLogAnalytics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'chargeback-log-analytics'
  scope: openAi
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'Audit'
        enabled: true
      }
      {
        category: 'RequestResponse'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}
