// Key Vault in RBAC mode holding the app's secrets. App settings reference secrets
// with '@Microsoft.KeyVault(SecretUri=...)'; the function app's identity gets
// "Key Vault Secrets User" (app/role-assignments.bicep).
param location string
param tags object = {}
param name string
param enablePurgeProtection bool = false
param secretName string

@secure()
@description('Secret value; empty = do not write the secret (keeps an existing value).')
param secretValue string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // ARM rejects enablePurgeProtection=false once enabled; send null when not requested.
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(secretValue)) {
  parent: vault
  name: secretName
  properties: {
    contentType: 'text/plain'
    value: secretValue
  }
}

output name string = vault.name
output id string = vault.id
output vaultUri string = vault.properties.vaultUri
