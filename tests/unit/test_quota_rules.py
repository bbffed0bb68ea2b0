"""Quota values and quota-related settings: validation names the offending field or key."""

from __future__ import annotations

import pytest

from shared.core.quotas import make_quota
from shared.errors import InvalidRequestError, SettingError
from shared.settings import Settings
from tests.conftest import TEST_API_KEY


@pytest.mark.parametrize(("args", "field"), [
    (("team-a", "week", 5, None), "period"),
    (("team-a", "month", None, None), "tokens"),
    (("team-a", "month", -5, None), "tokens"),
    (("team-a", "month", "5k", None), "tokens"),
    (("team-a", "month", None, "abc"), "cost"),
    (("team-a", "month", None, 1.5), "cost"),  # a binary float is refused: give "1.50"
    (("team-a", "month", None, "0"), "cost"),
    (("team-a", "month", None, "1.0000001"), "cost"),
    (("", "month", 5, None), "subscription"),
    (("a\nb", "month", 5, None), "subscription"),
])
def test_invalid_quota_names_the_field(args: tuple[object, ...], field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        make_quota(*args)
    assert info.value.parameter == field


@pytest.mark.parametrize(("values", "prop", "key"), [
    ({"ALERT_THRESHOLDS": "50,eighty"}, "alert_thresholds", "ALERT_THRESHOLDS"),
    ({"ALERT_THRESHOLDS": "0,50"}, "alert_thresholds", "ALERT_THRESHOLDS"),
    ({"ALERT_TEAMS_URLS": "http://example.com/hook-secret"}, "alert_teams_urls", "ALERT_TEAMS_URLS"),
    ({"ALERT_SLACK_URLS": "not a url"}, "alert_slack_urls", "ALERT_SLACK_URLS"),
    ({"ADMIN_API_KEY": "short"}, "admin_api_key", "ADMIN_API_KEY"),
    ({"ADMIN_API_KEY": TEST_API_KEY, "API_KEY": TEST_API_KEY}, "admin_api_key", "ADMIN_API_KEY"),
    ({"ENFORCEMENT_MODE": "always"}, "enforcement_mode", "ENFORCEMENT_MODE"),
    ({"APIM_RESOURCE_ID": "/subscriptions/x/apim"}, "apim_resource_id", "APIM_RESOURCE_ID"),
])
def test_new_settings_name_their_key(values: dict[str, str], prop: str, key: str) -> None:
    with pytest.raises(SettingError) as info:
        getattr(Settings(values), prop)
    assert info.value.key == key
    assert "hook-secret" not in str(info.value)  # a webhook URL is a secret: never in a message


def test_new_settings_defaults_and_key_vault_fallback() -> None:
    settings = Settings({"ALERT_TEAMS_URLS": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)",
                         "ALERT_WEBHOOK_URLS": " https://a.example/x , http://127.0.0.1:9/y ,"})
    assert settings.alert_thresholds == (50, 80, 100)
    assert settings.alert_teams_urls == ()  # an unresolved Key Vault reference counts as unset
    assert settings.alert_webhook_urls == ("https://a.example/x", "http://127.0.0.1:9/y")
    assert settings.enforcement_mode == "off" and settings.admin_api_key is None and settings.prices_path is None
    assert Settings({"ALERT_THRESHOLDS": "100, 80%,50,80"}).alert_thresholds == (50, 80, 100)
