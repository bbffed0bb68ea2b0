"""Access settings: API auth modes and paging limits read from settings (no storage)."""

from __future__ import annotations

import pytest

from shared.settings import Settings


# -- the settings behind it ---------------------------------------------------------------------------------
def test_access_and_paging_settings() -> None:
    from shared.errors import SettingError

    assert Settings({}).trust_app_service_auth is False
    assert Settings({"TRUST_APP_SERVICE_AUTH": "TRUE"}).trust_app_service_auth is True
    with pytest.raises(SettingError) as info:
        _ = Settings({"TRUST_APP_SERVICE_AUTH": "yes"}).trust_app_service_auth
    assert info.value.key == "TRUST_APP_SERVICE_AUTH"
    from_api_key = Settings({"API_KEY": "api-key-0123456789abc"}).page_token_key
    dedicated = Settings({"API_KEY": "api-key-0123456789abc", "PAGE_TOKEN_SECRET": "token-secret-0123456789"})
    assert len(from_api_key) == 32 and from_api_key != dedicated.page_token_key
    assert from_api_key != b"api-key-0123456789abc"  # derived, never the key itself
    unresolved = Settings({"API_KEY": "api-key-0123456789abc",
                           "PAGE_TOKEN_SECRET": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/x)"})
    assert unresolved.page_token_key == from_api_key  # an uncreated Key Vault secret falls back to API_KEY
    for values in ({}, {"PAGE_TOKEN_SECRET": "short"}):
        with pytest.raises(SettingError) as info:
            _ = Settings(values).page_token_key
        assert info.value.key == "PAGE_TOKEN_SECRET"
