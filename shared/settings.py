"""One typed settings object, read from a mapping (process env or local.settings.json ``Values``).

Each setting is parsed when first used, so a timer that never touches the Log Analytics settings
does not fail because they are absent — but the first use of a missing or malformed one raises
:class:`SettingError` naming the key.  ``SETTINGS`` is the registry every other artefact (the
sample settings file, infra app settings, the README table) is checked against in tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from shared.errors import SettingError


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str | None
    description: str
    secret: bool = False
    local_only: bool = False  # only meaningful on a developer machine, never an Azure app setting


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("LOG_SOURCE", "loganalytics",
                "`loganalytics` (Azure) or `local` (embedded DuckDB workspace)."),
    SettingSpec("LOG_ANALYTICS_WORKSPACE_ID", None,
                "Workspace (customer) id holding the APIM logs; required for `loganalytics`."),
    SettingSpec("LOG_ANALYTICS_ENDPOINT", "https://api.loganalytics.io",
                "Log Analytics query endpoint (sovereign clouds differ)."),
    SettingSpec("LOG_QUERY_TIMEOUT_SECONDS", "180", "Server timeout of one log query (max 600)."),
    SettingSpec("LOCAL_WORKSPACE_PATH", ".local/workspace.duckdb",
                "DuckDB file used as the workspace when `LOG_SOURCE=local`.", local_only=True),
    SettingSpec("TABLES_ENDPOINT", None,
                "Table service URL, used with managed identity (Azure)."),
    SettingSpec("TABLES_CONNECTION_STRING", None,
                "Table Storage connection string (Azurite locally); wins over TABLES_ENDPOINT.",
                secret=True, local_only=True),
    SettingSpec("TABLE_PREFIX", "chargeback", "Prefix of every table name (letters and digits)."),
    SettingSpec("ROLLUP_SCHEDULE", "0 */15 * * * *", "NCRONTAB schedule of the rollup timer."),
    SettingSpec("ROLLUP_LOOKBACK_MINUTES", "120",
                "How far before the watermark each run re-aggregates (late log ingestion)."),
    SettingSpec("ROLLUP_INGESTION_DELAY_MINUTES", "5",
                "Most recent minutes left out of a run (not yet ingested)."),
    SettingSpec("ROLLUP_MAX_CHUNK_HOURS", "24",
                "Longest time range one log query covers; longer windows are split."),
    SettingSpec("API_AUTH", "apikey",
                "`functionkey` (Azure Functions keys guard the API) or `apikey` (`x-api-key` header)."),
    SettingSpec("API_KEY", None, "Key the report API expects in `x-api-key` when API_AUTH=apikey.",
                secret=True),
)
SPECS = {spec.name: spec for spec in SETTINGS}


def _positive_int(key: str, raw: str, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(key, f"expected a whole number, got {raw!r}") from None
    if value <= 0 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum else "greater than 0"
        raise SettingError(key, f"must be {bound}, got {value}")
    return value


def _non_negative_minutes(key: str, raw: str) -> timedelta:
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(key, f"expected a whole number of minutes, got {raw!r}") from None
    if value < 0:
        raise SettingError(key, f"must not be negative, got {value}")
    return timedelta(minutes=value)


def _choice(key: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise SettingError(key, f"must be one of {', '.join(choices)}, got {raw!r}")
    return value


class Settings:
    """Typed view over a string mapping; every property names its key when it fails."""

    def __init__(self, values: Mapping[str, str], base_dir: Path | None = None) -> None:
        self._values = dict(values)
        self._base_dir = base_dir or Path.cwd()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None,
                         local_settings: Path | None = None) -> Settings:
        """Process environment, over a ``local.settings.json`` ``Values`` block when present."""
        env = dict(os.environ if environ is None else environ)
        path = local_settings or Path("local.settings.json")
        values: dict[str, str] = {}
        if path.is_file():
            try:
                block = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
            except (json.JSONDecodeError, AttributeError) as exc:
                raise SettingError(str(path), f"not a valid local.settings.json: {exc}") from exc
            values.update({str(k): str(v) for k, v in block.items()})
        values.update(env)  # the process environment wins, as in the Functions host
        return cls(values, base_dir=path.resolve().parent if path.is_file() else None)

    def with_overrides(self, **overrides: str) -> Settings:
        return Settings({**self._values, **overrides}, self._base_dir)

    # -- raw access -----------------------------------------------------------------------------
    def raw(self, key: str) -> str:
        """The value, or the registry default; a setting with neither fails here."""
        value = self._values.get(key)
        if value is None or value.strip() == "":
            value = SPECS[key].default if key in SPECS else None
        if value is None:
            raise SettingError(key, "is required but not set")
        return value

    def optional(self, key: str) -> str | None:
        value = self._values.get(key)
        return value if value and value.strip() else None

    # -- typed settings -------------------------------------------------------------------------
    @cached_property
    def log_source(self) -> str:
        return _choice("LOG_SOURCE", self.raw("LOG_SOURCE"), ("loganalytics", "local"))

    @cached_property
    def log_analytics_workspace_id(self) -> str:
        return self.raw("LOG_ANALYTICS_WORKSPACE_ID").strip()

    @cached_property
    def log_analytics_endpoint(self) -> str:
        return self.raw("LOG_ANALYTICS_ENDPOINT").rstrip("/")

    @cached_property
    def log_query_timeout_seconds(self) -> int:
        return _positive_int("LOG_QUERY_TIMEOUT_SECONDS", self.raw("LOG_QUERY_TIMEOUT_SECONDS"), 600)

    @cached_property
    def local_workspace_path(self) -> Path:
        path = Path(self.raw("LOCAL_WORKSPACE_PATH"))
        return path if path.is_absolute() else self._base_dir / path

    @cached_property
    def tables_connection_string(self) -> str | None:
        return self.optional("TABLES_CONNECTION_STRING")

    @cached_property
    def tables_endpoint(self) -> str:
        """Only read when no connection string is set: then the endpoint is required."""
        return self.raw("TABLES_ENDPOINT").rstrip("/")

    @cached_property
    def table_prefix(self) -> str:
        prefix = self.raw("TABLE_PREFIX")
        if not prefix.isascii() or not prefix.isalnum() or not prefix[0].isalpha() or len(prefix) > 40:
            raise SettingError("TABLE_PREFIX", f"must be 1-40 letters/digits starting with a letter, got {prefix!r}")
        return prefix

    @cached_property
    def rollup_lookback(self) -> timedelta:
        return _non_negative_minutes("ROLLUP_LOOKBACK_MINUTES", self.raw("ROLLUP_LOOKBACK_MINUTES"))

    @cached_property
    def rollup_ingestion_delay(self) -> timedelta:
        return _non_negative_minutes("ROLLUP_INGESTION_DELAY_MINUTES", self.raw("ROLLUP_INGESTION_DELAY_MINUTES"))

    @cached_property
    def rollup_max_chunk(self) -> timedelta:
        return timedelta(hours=_positive_int("ROLLUP_MAX_CHUNK_HOURS", self.raw("ROLLUP_MAX_CHUNK_HOURS"), 24 * 31))

    @cached_property
    def api_auth(self) -> str:
        return _choice("API_AUTH", self.raw("API_AUTH"), ("apikey", "functionkey"))

    @cached_property
    def api_key(self) -> str:
        key = self.raw("API_KEY")
        if len(key) < 16:
            raise SettingError("API_KEY", "must be at least 16 characters")
        return key
