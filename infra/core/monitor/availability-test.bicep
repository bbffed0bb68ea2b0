// Application Insights standard availability test of the app's /api/health, every 5 minutes from
// five regions. /api/health answers 200 only while storage is reachable and the rollup's watermark
// lags less than ROLLUP_MAX_LAG_MINUTES (503 otherwise), so this one test covers a stopped app, dead
// storage and a pipeline falling behind. Alerting on it: an Azure Monitor alert rule on the test's
// availability metric with your action group (docs/operations.md, "Monitoring").
//
// Resource shape from the Microsoft Learn template reference "Microsoft.Insights webtests"
// (https://learn.microsoft.com/azure/templates/microsoft.insights/webtests, API 2022-06-15): kind
// 'standard' with properties.Kind 'standard', SyntheticMonitorId, Name, Enabled, Frequency, Timeout,
// RetryEnabled, Locations[].Id, Request.{RequestUrl, HttpVerb, FollowRedirects, ParseDependentRequests},
// ValidationRules.{ExpectedHttpStatusCode, SSLCheck, SSLCertRemainingLifetimeCheck}; the
// 'hidden-link:<component id>': 'Resource' tag ties the test to its Application Insights resource.
param location string
param tags object = {}

@description('Name of the web test resource (also its SyntheticMonitorId).')
param name string

@description('Resource id of the Application Insights component that receives the results.')
param applicationInsightsId string

@description('The URL tested, e.g. https://<app>.azurewebsites.net/api/health (it must answer without a key).')
param healthUrl string

@allowed([
  300
  600
  900
])
param frequencySeconds int = 300

@description('Test locations (Azure availability-test location ids).')
param testLocations array = [
  'us-va-ash-azr' // East US
  'us-ca-sjc-azr' // West US
  'emea-nl-ams-azr' // West Europe
  'emea-gb-db3-azr' // North Europe
  'apac-sg-sin-azr' // Southeast Asia
]

resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: name
  location: location
  tags: union(tags, {
    'hidden-link:${applicationInsightsId}': 'Resource'
  })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: name
    Name: 'chargeback /api/health'
    Description: 'GET /api/health: 200 = storage reachable and the rollup keeps up; 503 = degraded or unavailable.'
    Enabled: true
    Kind: 'standard'
    Frequency: frequencySeconds
    Timeout: 30
    RetryEnabled: true
    Locations: [for id in testLocations: {
      Id: id
    }]
    Request: {
      RequestUrl: healthUrl
      HttpVerb: 'GET'
      FollowRedirects: false
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

output id string = healthTest.id
output name string = healthTest.name
