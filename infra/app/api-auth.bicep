// App Service Authentication ("Easy Auth") with Microsoft Entra ID in front of the function app.
// Deployed by main.bicep only when an Entra client id is given; the app then runs with
// API_AUTH=entra and TRUST_APP_SERVICE_AUTH=true (the host asks for no function key, the app
// requires the principal this puts on every request: shared/api/sign_in.py).
//
// Property names as in the Microsoft Learn ARM/Bicep reference "Microsoft.Web sites/config
// 'authsettingsV2'" (https://learn.microsoft.com/azure/templates/microsoft.web/sites/config-authsettingsv2):
//   platform.enabled
//   globalValidation.requireAuthentication, .unauthenticatedClientAction
//     ('RedirectToLoginPage' | 'AllowAnonymous' | 'Return401' | 'Return403'), .excludedPaths
//   httpSettings.requireHttps
//   identityProviders.azureActiveDirectory.enabled, .registration.clientId, .registration.openIdIssuer,
//     .validation.allowedAudiences
//   login.tokenStore.enabled
//
// One unauthenticated action serves the whole app, so it is Return401 (what API clients expect);
// the dashboard's page and its three assets hold no data and are left out, and the page's script
// sends an unsigned browser to /.auth/login/aad when the API answers 401 (a redirect for the
// dashboard, a 401 for the API). /api/health stays open for monitors. Nothing in these paths
// reads the principal headers, so a client forging them there gains nothing.
// Without a client secret Easy Auth signs in with an ID token (form_post): enable "ID tokens" on
// the app registration and add the redirect URI https://<app>.azurewebsites.net/.auth/login/aad/callback.
param functionAppName string

@minLength(1)
@description('Client (application) id of the Entra ID app registration users sign in to.')
param clientId string

// Exactly shared.api.sign_in.OPEN_PATHS (tests/integration/test_infra_auth.py checks it).
var openPaths = [
  '/api/health'
  '/api/dashboard'
  '/api/dashboard/assets/dashboard.css'
  '/api/dashboard/assets/dashboard.js'
  '/api/dashboard/assets/chart.umd.min.js'
]

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config as a site, and CKV_AZURE_13 knows only the V1
  // 'authsettings' (properties.enabled); V2 turns sign-in on with platform.enabled below.
  // checkov:skip=CKV_AZURE_13:authsettingsV2 enables authentication through platform.enabled (the check reads V1 only)
  // checkov:skip=CKV_AZURE_63:a site check (HTTP logging), not a property of the auth config
  // checkov:skip=CKV_AZURE_65:a site check (detailed error messages), not a property of the auth config
  // checkov:skip=CKV_AZURE_66:a site check (failed request tracing), not a property of the auth config
  // checkov:skip=CKV_AZURE_80:a site check (.NET version; this app is Python), not a property of the auth config
  // checkov:skip=CKV_AZURE_88:a site check (Azure Files), not a property of the auth config
  // checkov:skip=CKV_AZURE_222:a site check (public network access), not a property of the auth config
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: openPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          // the browser's ID token carries the client id; tokens requested for the app's API the api:// URI
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false // the session cookie is all the dashboard needs; no tokens kept for the app
      }
    }
  }
}
