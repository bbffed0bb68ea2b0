import json
from datetime import timedelta
from pathlib import Path

import pytest

from shared.errors import SettingError
from shared.settings import SETTINGS, Settings


def test_missing_required_setting_names_the_key() -> None:
    settings = Settings({"LOG_SOURCE": "loganalytics"})
    with pytest.raises(SettingError, match="LOG_ANALYTICS_WORKSPACE_ID") as info:
        _ = settings.log_analytics_workspace_id
    assert info.value.key == "LOG_ANALYTICS_WORKSPACE_ID"


def test_settings_fail_at_first_use_not_at_construction() -> None:
    settings = Settings({"ROLLUP_LOOKBACK_MINUTES": "two hours"})
    assert settings.rollup_ingestion_delay == timedelta(minutes=5)  # unrelated settings still work
    with pytest.raises(SettingError, match=r"ROLLUP_LOOKBACK_MINUTES.*whole number"):
        _ = settings.rollup_lookback


@pytest.mark.parametrize(("key", "value", "prop"), [
    ("LOG_SOURCE", "kusto", "log_source"),
    ("LOG_QUERY_TIMEOUT_SECONDS", "0", "log_query_timeout_seconds"),
    ("LOG_QUERY_TIMEOUT_SECONDS", "601", "log_query_timeout_seconds"),
    ("ROLLUP_INGESTION_DELAY_MINUTES", "-5", "rollup_ingestion_delay"),
    ("ROLLUP_MAX_CHUNK_HOURS", "x", "rollup_max_chunk"),
    ("TABLE_PREFIX", "bad-prefix", "table_prefix"),
    ("API_AUTH", "none", "api_auth"),
    ("API_KEY", "short", "api_key"),
])
def test_malformed_settings_name_their_key(key: str, value: str, prop: str) -> None:
    with pytest.raises(SettingError) as info:
        getattr(Settings({key: value}), prop)
    assert info.value.key == key
    assert key in str(info.value)


def test_defaults_and_typed_values() -> None:
    settings = Settings({"LOG_SOURCE": "LOCAL", "ROLLUP_LOOKBACK_MINUTES": "90"})
    assert settings.log_source == "local"
    assert settings.rollup_lookback == timedelta(minutes=90)
    assert settings.rollup_max_chunk == timedelta(hours=24)
    assert settings.table_prefix == "chargeback"
    assert settings.tables_connection_string is None


def test_local_settings_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"TABLE_PREFIX": "fromfile", "LOCAL_WORKSPACE_PATH": "data/ws.duckdb",
                                           "API_KEY": "file-key-0123456789"}}))
    settings = Settings.from_environment({"API_KEY": "env-key-0123456789abc"}, local_settings=path)
    assert settings.table_prefix == "fromfile"
    assert settings.api_key == "env-key-0123456789abc"
    assert settings.local_workspace_path == tmp_path / "data" / "ws.duckdb"  # relative to the file


def test_broken_local_settings_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text("{not json")
    with pytest.raises(SettingError, match=r"local\.settings\.json"):
        Settings.from_environment({}, local_settings=path)


SETTINGS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_settings() -> list[str]:
    """The names in the first column of the settings table (the doc's `## Settings` section)."""
    import re

    _, found, after = SETTINGS_DOC.read_text().partition("\n## Settings\n")
    assert found, f"no '## Settings' section in {SETTINGS_DOC}"
    section = after.split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z0-9_]+)` \|", section, re.M)


def test_sample_settings_and_settings_doc_list_every_setting() -> None:
    root = Path(__file__).resolve().parents[2]
    sample = json.loads((root / "local.settings.sample.json").read_text())["Values"]
    names = {spec.name for spec in SETTINGS}
    assert names <= set(sample), f"missing from local.settings.sample.json: {names - set(sample)}"
    host_settings = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
    assert set(sample) - host_settings <= names, f"stale in sample: {set(sample) - host_settings - names}"
    documented = documented_settings()
    missing = sorted(names - set(documented))
    assert not missing, f"settings missing from the table in {SETTINGS_DOC.name}: {missing}"
    stale = sorted(set(documented) - names)
    assert not stale, f"settings in the table of {SETTINGS_DOC.name} but not in the registry: {stale}"
    assert len(documented) == len(set(documented)), "a setting is listed twice in the settings table"


@pytest.mark.parametrize("key", ["ROLLUP_SCHEDULE", "PROBE_SCHEDULE"])
def test_timer_schedules_are_six_field_ncrontab_everywhere(key: str) -> None:
    """The Functions host reads %KEY% from app settings: with seconds, six fields, in every place."""
    import re

    root = Path(__file__).resolve().parents[2]
    sample = json.loads((root / "local.settings.sample.json").read_text())["Values"][key]
    bicep = re.search(rf"^\s*{key}: '([^']+)'", (root / "infra" / "main.bicep").read_text(), re.M)
    default = next(spec.default for spec in SETTINGS if spec.name == key)
    assert bicep is not None
    for value in (sample, bicep.group(1), default):
        fields = str(value).split()
        assert len(fields) == 6, value
        assert all(re.fullmatch(r"[\d*/,\-]+", field) for field in fields), value
