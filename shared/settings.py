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
    SettingSpec("LOG_QUERY_MAX_RETRIES", "3",
                "Retries of a throttled (429, honouring Retry-After), failed (5xx) or timed-out log query."),
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
    SettingSpec("USAGE_SOURCE", "auto",
                "`llmlog` (ApiManagementGatewayLlmLog), `gatewaybody` (logged response bodies only) or "
                "`auto` (LLM log per request, else the body)."),
    SettingSpec("PROBE_SUBSCRIPTION_ID", None,
                "APIM subscription used only by synthetic probes; its traffic is rolled up as "
                "`synthetic-probe` and left out of chargeback."),
    SettingSpec("ROLLUP_MAX_CHUNK_HOURS", "24",
                "Longest time range one log query covers; longer windows are split."),
    SettingSpec("API_AUTH", "apikey",
                "`functionkey` (Azure Functions keys guard the API) or `apikey` (`x-api-key` header)."),
    SettingSpec("API_KEY", None, "Key the report API expects in `x-api-key` when API_AUTH=apikey.",
                secret=True),
    # -- synthetic probe (issue #5) -------------------------------------------------------------
    SettingSpec("PROBE_SCHEDULE", "0 */5 * * * *", "NCRONTAB schedule of the probe timer."),
    SettingSpec("PROBE_ENDPOINT", None,
                "APIM gateway URL the probe calls (`https://<apim>.azure-api.net`); required when probing."),
    SettingSpec("PROBE_API_VERSION", "2024-10-21", "Azure OpenAI `api-version` of the probe calls."),
    SettingSpec("PROBE_DEPLOYMENTS", None,
                "Comma-separated deployments to probe; empty = the probe is off."),
    SettingSpec("PROBE_SUBSCRIPTION_KEY", None,
                "APIM subscription key of the probe (a dedicated subscription, so its traffic is known).",
                secret=True),
    SettingSpec("PROBE_KEY_HEADER", "api-key",
                "Header carrying the probe key: `api-key` or `Ocp-Apim-Subscription-Key`."),
    SettingSpec("PROBE_MARKER_HEADER", "x-chargeback-probe",
                "Header set to `1` on every probe request, so chargeback can tell probe traffic apart."),
    SettingSpec("PROBE_STREAM", "false",
                "`false` (plain calls), `true` (streamed, measures time to first token) or `both`."),
    SettingSpec("PROBE_TIMEOUT_SECONDS", "10", "Timeout of each network wait of one probe call (max 120)."),
    SettingSpec("PROBE_MAX_RETRIES", "1", "Retries of a failed probe call (timeouts, 429, 5xx; 0-5)."),
    SettingSpec("PROBE_BUDGET_SECONDS", "120",
                "Total time one probe run may take (max 540, under the 10-minute function timeout)."),
    SettingSpec("PROBE_FAILURE_THRESHOLD", "3",
                "Consecutive failed runs of a deployment that open an incident (alert once, recover once)."),
    # -- pricing, quotas, alerts, enforcement (issue #4) --------------------------------------
    SettingSpec("PRICES_PATH", None,
                "JSON price file used instead of the shipped `shared/pricing/prices.default.json`."),
    SettingSpec("ADMIN_API_KEY", None,
                "Key quota writes expect in `x-api-key` (≥ 16 characters, not API_KEY); unset = no writes.",
                secret=True),
    SettingSpec("ALERT_THRESHOLDS", "50,80,100", "Quota alert thresholds in percent, comma-separated."),
    SettingSpec("ALERT_WEBHOOK_URLS", None, "Generic JSON webhook URLs for quota alerts, comma-separated.",
                secret=True),
    SettingSpec("ALERT_TEAMS_URLS", None,
                "Microsoft Teams incoming-webhook / Workflows URLs for quota alerts, comma-separated.", secret=True),
    SettingSpec("ALERT_SLACK_URLS", None, "Slack incoming-webhook URLs for quota alerts, comma-separated.",
                secret=True),
    SettingSpec("ENFORCEMENT_MODE", "off",
                "`off`, `dryrun` (log only) or `on` (suspend an APIM subscription at 100 % of its quota)."),
    SettingSpec("APIM_RESOURCE_ID", None,
                "ARM id of the API Management service; required when ENFORCEMENT_MODE is not `off`."),
    # -- report API access and paging (issue #6) --------------------------------------------------
    SettingSpec("TRUST_APP_SERVICE_AUTH", "false",
                "`true` only when App Service Authentication (Entra ID) fronts the app: then the "
                "X-MS-CLIENT-PRINCIPAL* headers are trusted and scope each caller to its subscriptions."),
    SettingSpec("PAGE_TOKEN_SECRET", None,
                "Secret the usage API's continuation tokens are signed with (HMAC); unset = derived from API_KEY.",
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


def _comma_list(raw: str) -> tuple[str, ...]:
    """Comma-separated values, trimmed, empty ones and repeats dropped, in order."""
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


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
    def log_query_max_retries(self) -> int:
        raw = self.raw("LOG_QUERY_MAX_RETRIES")
        return 0 if raw.strip() == "0" else _positive_int("LOG_QUERY_MAX_RETRIES", raw, 10)

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
    def usage_source(self) -> str:
        return _choice("USAGE_SOURCE", self.raw("USAGE_SOURCE"), ("llmlog", "gatewaybody", "auto"))

    @cached_property
    def probe_subscription_id(self) -> str:
        return self.optional("PROBE_SUBSCRIPTION_ID") or ""

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

    # -- synthetic probe --------------------------------------------------------------------------
    @cached_property
    def probe_endpoint(self) -> str:
        endpoint = self.raw("PROBE_ENDPOINT").strip().rstrip("/")
        if not endpoint.startswith(("https://", "http://")):
            raise SettingError("PROBE_ENDPOINT", f"must be an http(s) URL, got {endpoint!r}")
        return endpoint

    @cached_property
    def probe_api_version(self) -> str:
        return self.raw("PROBE_API_VERSION").strip()

    @cached_property
    def probe_deployments(self) -> tuple[str, ...]:
        """Empty when PROBE_DEPLOYMENTS is not set: the probe is off."""
        raw = self.optional("PROBE_DEPLOYMENTS") or ""
        names = _comma_list(raw)
        for name in names:
            if any(ch in name for ch in "/?#") or not name.isprintable():
                raise SettingError("PROBE_DEPLOYMENTS", f"not a deployment name: {name!r}")
        return names

    @cached_property
    def probe_subscription_key(self) -> str:
        return self.raw("PROBE_SUBSCRIPTION_KEY").strip()

    @cached_property
    def probe_key_header(self) -> str:
        value = self.raw("PROBE_KEY_HEADER").strip()
        for choice in ("api-key", "Ocp-Apim-Subscription-Key"):
            if value.lower() == choice.lower():
                return choice
        raise SettingError("PROBE_KEY_HEADER", f"must be api-key or Ocp-Apim-Subscription-Key, got {value!r}")

    @cached_property
    def probe_marker_header(self) -> str:
        value = self.raw("PROBE_MARKER_HEADER").strip()
        if not value or not all(ch.isalnum() or ch == "-" for ch in value) or not value.isascii():
            raise SettingError("PROBE_MARKER_HEADER", f"must be a header name (letters, digits, -), got {value!r}")
        return value.lower()

    @cached_property
    def probe_stream(self) -> str:
        return _choice("PROBE_STREAM", self.raw("PROBE_STREAM"), ("false", "true", "both"))

    @cached_property
    def probe_timeout_seconds(self) -> float:
        return float(_positive_int("PROBE_TIMEOUT_SECONDS", self.raw("PROBE_TIMEOUT_SECONDS"), 120))

    @cached_property
    def probe_max_retries(self) -> int:
        raw = self.raw("PROBE_MAX_RETRIES")
        try:
            value = int(raw)
        except ValueError:
            raise SettingError("PROBE_MAX_RETRIES", f"expected a whole number, got {raw!r}") from None
        if not 0 <= value <= 5:
            raise SettingError("PROBE_MAX_RETRIES", f"must be between 0 and 5, got {value}")
        return value

    @cached_property
    def probe_budget_seconds(self) -> float:
        return float(_positive_int("PROBE_BUDGET_SECONDS", self.raw("PROBE_BUDGET_SECONDS"), 540))

    @cached_property
    def probe_failure_threshold(self) -> int:
        return _positive_int("PROBE_FAILURE_THRESHOLD", self.raw("PROBE_FAILURE_THRESHOLD"), 1000)

    # -- pricing, quotas, alerts, enforcement (issue #4) ------------------------------------------
    def _optional_secret(self, key: str) -> str | None:
        """An optional secret; an unresolved Key Vault reference (secret never created) counts as unset."""
        value = self.optional(key)
        if value is not None and value.strip().startswith("@Microsoft.KeyVault("):
            import logging

            logging.getLogger(__name__).warning("setting %s: Key Vault reference not resolved; treated as unset", key)
            return None
        return value.strip() if value else None

    @cached_property
    def prices_path(self) -> Path | None:
        raw = self.optional("PRICES_PATH")
        if raw is None:
            return None
        path = Path(raw.strip())
        return path if path.is_absolute() else self._base_dir / path

    @cached_property
    def admin_api_key(self) -> str | None:
        key = self._optional_secret("ADMIN_API_KEY")
        if key is None:
            return None
        if len(key) < 16:
            raise SettingError("ADMIN_API_KEY", "must be at least 16 characters")
        if key == self.optional("API_KEY"):
            raise SettingError("ADMIN_API_KEY", "must differ from API_KEY (readers must not be able to write)")
        return key

    @cached_property
    def alert_thresholds(self) -> tuple[int, ...]:
        from shared.core.alerting import parse_thresholds

        try:
            return parse_thresholds(self.raw("ALERT_THRESHOLDS"))
        except ValueError as exc:
            raise SettingError("ALERT_THRESHOLDS", str(exc)) from None

    def _urls(self, key: str) -> tuple[str, ...]:
        from urllib.parse import urlsplit

        urls = _comma_list(self._optional_secret(key) or "")
        for index, url in enumerate(urls, start=1):
            parts = urlsplit(url)
            local = parts.hostname in ("127.0.0.1", "localhost", "::1")
            # The value is secret: the message names the position, never the URL.
            if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
                raise SettingError(key, f"URL #{index} must be an https URL (http only for localhost)")
        return urls

    @cached_property
    def alert_webhook_urls(self) -> tuple[str, ...]:
        return self._urls("ALERT_WEBHOOK_URLS")

    @cached_property
    def alert_teams_urls(self) -> tuple[str, ...]:
        return self._urls("ALERT_TEAMS_URLS")

    @cached_property
    def alert_slack_urls(self) -> tuple[str, ...]:
        return self._urls("ALERT_SLACK_URLS")

    @cached_property
    def enforcement_mode(self) -> str:
        return _choice("ENFORCEMENT_MODE", self.raw("ENFORCEMENT_MODE"), ("off", "dryrun", "on"))

    @cached_property
    def apim_resource_id(self) -> str:
        import re

        value = self.raw("APIM_RESOURCE_ID").strip().rstrip("/")
        pattern = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ApiManagement/service/[^/]+"
        if not re.fullmatch(pattern, value, flags=re.IGNORECASE):
            raise SettingError("APIM_RESOURCE_ID", "must look like /subscriptions/<id>/resourceGroups/<rg>/"
                               f"providers/Microsoft.ApiManagement/service/<name>, got {value!r}")
        return value

    # -- report API access and paging (issue #6) ----------------------------------------------------
    @cached_property
    def trust_app_service_auth(self) -> bool:
        return _choice("TRUST_APP_SERVICE_AUTH", self.raw("TRUST_APP_SERVICE_AUTH"), ("true", "false")) == "true"

    @cached_property
    def page_token_key(self) -> bytes:
        """HMAC key of the continuation tokens: derived from PAGE_TOKEN_SECRET, else from API_KEY.

        Derived (HMAC with a fixed label), so the signing key is never the API key itself.
        """
        import hashlib
        import hmac

        secret = self._optional_secret("PAGE_TOKEN_SECRET")
        if secret is not None and len(secret) < 16:
            raise SettingError("PAGE_TOKEN_SECRET", "must be at least 16 characters")
        if secret is None:
            secret = self._optional_secret("API_KEY")
        if secret is None:
            raise SettingError("PAGE_TOKEN_SECRET", "is needed to sign page tokens when API_KEY is not set")
        return hmac.new(secret.encode(), b"chargeback/page-token/v1", hashlib.sha256).digest()
