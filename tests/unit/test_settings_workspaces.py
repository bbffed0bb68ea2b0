"""Several Log Analytics workspaces: LOG_ANALYTICS_WORKSPACE_ID and LOG_ANALYTICS_WORKSPACE_IDS unioned,
the first one first, malformed ids refused naming their key; APIM_SERVICES_MERGED parsed as a flag."""

from __future__ import annotations

import pytest

from shared.errors import SettingError
from shared.settings import Settings

WEU = "6f1b2c3d-0000-4a5b-8c9d-00000000a001"
EUS = "6f1b2c3d-0000-4a5b-8c9d-00000000b002"
SEA = "6f1b2c3d-0000-4a5b-8c9d-00000000c003"


def test_single_workspace_setting_keeps_working() -> None:
    assert Settings({"LOG_ANALYTICS_WORKSPACE_ID": WEU}).log_analytics_workspace_ids == (WEU,)


def test_list_alone_is_enough_and_keeps_its_order() -> None:
    settings = Settings({"LOG_ANALYTICS_WORKSPACE_IDS": f" {EUS}, ,{SEA} "})
    assert settings.log_analytics_workspace_ids == (EUS, SEA)


def test_both_are_unioned_single_first_without_repeats() -> None:
    settings = Settings({"LOG_ANALYTICS_WORKSPACE_ID": WEU,
                         "LOG_ANALYTICS_WORKSPACE_IDS": f"{EUS},{WEU.upper()},{SEA},{EUS}"})
    assert settings.log_analytics_workspace_ids == (WEU, EUS, SEA)


@pytest.mark.parametrize(("values", "key"), [
    ({"LOG_ANALYTICS_WORKSPACE_IDS": f"{WEU},my-workspace"}, "LOG_ANALYTICS_WORKSPACE_IDS"),
    ({"LOG_ANALYTICS_WORKSPACE_IDS": f"{WEU};{EUS}"}, "LOG_ANALYTICS_WORKSPACE_IDS"),
    ({"LOG_ANALYTICS_WORKSPACE_ID": "ws-123", "LOG_ANALYTICS_WORKSPACE_IDS": EUS}, "LOG_ANALYTICS_WORKSPACE_ID"),
    ({}, "LOG_ANALYTICS_WORKSPACE_ID"),  # neither given
])
def test_malformed_or_missing_workspace_ids_name_their_key(values: dict[str, str], key: str) -> None:
    with pytest.raises(SettingError) as info:
        _ = Settings(values).log_analytics_workspace_ids
    assert info.value.key == key and key in str(info.value)


def test_services_are_kept_apart_unless_merged() -> None:
    assert Settings({}).apim_services_merged is False
    assert Settings({"APIM_SERVICES_MERGED": "TRUE"}).apim_services_merged is True
    with pytest.raises(SettingError) as info:
        _ = Settings({"APIM_SERVICES_MERGED": "yes"}).apim_services_merged
    assert info.value.key == "APIM_SERVICES_MERGED"
