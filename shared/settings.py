"""One typed settings object, read from a mapping (process env or local.settings.json ``Values``).

Table-driven: each setting is one :class:`Setting` line on :class:`Settings` — its key (spelled
only there), default, description and parser — and is parsed when first used, so a timer that
never touches the Log Analytics settings does not fail because they are absent; the first use of a
missing or malformed one raises :class:`SettingError` naming the key.  ``SETTINGS`` (collected from
those lines) is the registry every other artefact (the sample settings file, infra app settings,
the documented settings table) is checked against in tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

from shared.errors import SettingError

T = TypeVar("T")
# A parser gets the settings (for the few that depend on another value), the key, and the value as
# given (``None`` when unset or blank and without a default).
Parser = Callable[["Settings", str, str | None], T]
log = logging.getLogger(__name__)


class Setting(Generic[T]):
    """One app setting: a typed, lazily parsed, cached attribute of :class:`Settings`."""

    def __init__(self, name: str, default: str | None, description: str, parse: Parser[T], *,
                 secret: bool = False, local_only: bool = False) -> None:
        self.name = name
        self.default = default
        self.description = description
        self.secret = secret
        self.local_only = local_only  # only meaningful on a developer machine, never an Azure app setting
        self._parse = parse

    @overload
    def __get__(self, settings: None, owner: type[Settings]) -> Setting[T]: ...

    @overload
    def __get__(self, settings: Settings, owner: type[Settings]) -> T: ...

    def __get__(self, settings: Settings | None, owner: type[Settings]) -> Setting[T] | T:
        if settings is None:
            return self
        cache = settings._parsed
        if self.name not in cache:
            cache[self.name] = self._parse(settings, self.name, settings.value(self.name))
        return cache[self.name]  # type: ignore[return-value]


# -- parsers ------------------------------------------------------------------------------------------
def _required(value: str | None, key: str) -> str:
    if value is None:
        raise SettingError(key, "is required but not set")
    return value


def _text(_: Settings, key: str, value: str | None) -> str:
    return _required(value, key).strip()


def _url(_: Settings, key: str, value: str | None) -> str:
    return _required(value, key).rstrip("/")


def _optional_text(_: Settings, __: str, value: str | None) -> str | None:
    return value


def _whole_number(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingError(key, f"expected a whole number, got {raw!r}") from None


def _positive_int(maximum: int | None = None) -> Parser[int]:
    def parse(_: Settings, key: str, value: str | None) -> int:
        number = _whole_number(key, _required(value, key))
        if number <= 0 or (maximum is not None and number > maximum):
            bound = f"between 1 and {maximum}" if maximum else "greater than 0"
            raise SettingError(key, f"must be {bound}, got {number}")
        return number

    return parse


def _bounded_int(low: int, high: int) -> Parser[int]:
    def parse(_: Settings, key: str, value: str | None) -> int:
        number = _whole_number(key, _required(value, key))
        if not low <= number <= high:
            raise SettingError(key, f"must be between {low} and {high}, got {number}")
        return number

    return parse


def _seconds(maximum: int) -> Parser[float]:
    whole = _positive_int(maximum)
    return lambda settings, key, value: float(whole(settings, key, value))


def _minutes(_: Settings, key: str, value: str | None) -> timedelta:
    raw = _required(value, key)
    try:
        minutes = int(raw)
    except ValueError:
        raise SettingError(key, f"expected a whole number of minutes, got {raw!r}") from None
    if minutes < 0:
        raise SettingError(key, f"must not be negative, got {minutes}")
    return timedelta(minutes=minutes)


def _hours(maximum: int) -> Parser[timedelta]:
    whole = _positive_int(maximum)
    return lambda settings, key, value: timedelta(hours=whole(settings, key, value))


def _choice(*choices: str) -> Parser[str]:
    def parse(_: Settings, key: str, value: str | None) -> str:
        raw = _required(value, key)
        chosen = raw.strip().lower()
        if chosen not in choices:
            raise SettingError(key, f"must be one of {', '.join(choices)}, got {raw!r}")
        return chosen

    return parse


def _positive_decimal(_: Settings, key: str, value: str | None) -> Decimal:
    raw = _required(value, key).strip()
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise SettingError(key, f"expected a number, got {raw!r}") from None
    if not number.is_finite() or number <= 0:
        raise SettingError(key, f"must be greater than 0, got {raw!r}")
    return number


def _flag(settings: Settings, key: str, value: str | None) -> bool:
    return _choice("true", "false")(settings, key, value) == "true"


def _path(required: bool) -> Parser[Any]:
    """A path; a relative one is relative to the folder of the local.settings.json read."""
    def parse(settings: Settings, key: str, value: str | None) -> Path | None:
        if value is None and not required:
            return None
        path = Path(_required(value, key).strip() if not required else _required(value, key))
        return path if path.is_absolute() else settings.base_dir / path

    return parse


def comma_list(raw: str) -> tuple[str, ...]:
    """Comma-separated values, trimmed, empty ones and repeats dropped, in order."""
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def _secret_value(settings: Settings, key: str) -> str | None:
    """An optional secret; an unresolved Key Vault reference (secret never created) counts as unset."""
    value = settings.value(key)
    if value is not None and value.strip().startswith("@Microsoft.KeyVault("):
        log.warning("setting %s: Key Vault reference not resolved; treated as unset", key)
        return None
    return value.strip() if value else None


def _long_key(settings: Settings, key: str, value: str | None) -> str:
    secret = _required(value, key)
    if len(secret) < 16:
        raise SettingError(key, "must be at least 16 characters")
    return secret


def _admin_key(settings: Settings, key: str, _: str | None) -> str | None:
    secret = _secret_value(settings, key)
    if secret is None:
        return None
    if len(secret) < 16:
        raise SettingError(key, "must be at least 16 characters")
    if secret == settings.value("API_KEY"):
        raise SettingError(key, "must differ from API_KEY (readers must not be able to write)")
    return secret


def _urls(settings: Settings, key: str, _: str | None) -> tuple[str, ...]:
    urls = comma_list(_secret_value(settings, key) or "")
    for index, url in enumerate(urls, start=1):
        parts = urlsplit(url)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        # The value is secret: the message names the position, never the URL.
        if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
            raise SettingError(key, f"URL #{index} must be an https URL (http only for localhost)")
    return urls


def _table_prefix(_: Settings, key: str, value: str | None) -> str:
    prefix = _required(value, key)
    if not prefix.isascii() or not prefix.isalnum() or not prefix[0].isalpha() or len(prefix) > 40:
        raise SettingError(key, f"must be 1-40 letters/digits starting with a letter, got {prefix!r}")
    return prefix


def _probe_endpoint(_: Settings, key: str, value: str | None) -> str:
    endpoint = _required(value, key).strip().rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise SettingError(key, f"must be an http(s) URL, got {endpoint!r}")
    return endpoint


def _deployment_names(_: Settings, key: str, value: str | None) -> tuple[str, ...]:
    """Empty when unset: the probe is off."""
    names = comma_list(value or "")
    for name in names:
        if any(ch in name for ch in "/?#") or not name.isprintable():
            raise SettingError(key, f"not a deployment name: {name!r}")
    return names


def _probe_key_header(_: Settings, key: str, value: str | None) -> str:
    header = _required(value, key).strip()
    for choice in ("api-key", "Ocp-Apim-Subscription-Key"):
        if header.lower() == choice.lower():
            return choice
    raise SettingError(key, f"must be api-key or Ocp-Apim-Subscription-Key, got {header!r}")


def _header_name(_: Settings, key: str, value: str | None) -> str:
    header = _required(value, key).strip()
    if not header or not all(ch.isalnum() or ch == "-" for ch in header) or not header.isascii():
        raise SettingError(key, f"must be a header name (letters, digits, -), got {header!r}")
    return header.lower()


def _thresholds(_: Settings, key: str, value: str | None) -> tuple[int, ...]:
    from shared.core.alerting import parse_thresholds

    try:
        return parse_thresholds(_required(value, key))
    except ValueError as exc:
        raise SettingError(key, str(exc)) from None


WORKSPACE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _checked_workspace_id(key: str, value: str) -> str:
    """A workspace's customer id (a GUID, as the portal's Workspace ID and the query API's path have it)."""
    if not WORKSPACE_ID.fullmatch(value):
        raise SettingError(key, f"not a workspace (customer) id, expected a GUID, got {value!r}")
    return value.lower()


def _workspace_id(_: Settings, key: str, value: str | None) -> str:
    return _checked_workspace_id(key, _required(value, key).strip())


def _workspace_ids(settings: Settings, key: str, value: str | None) -> tuple[str, ...]:
    """Every workspace the usage query covers: ``LOG_ANALYTICS_WORKSPACE_ID`` first (the one the query
    is sent to), then this setting's ids, without repeats.  At least one of the two is required."""
    single = settings.value("LOG_ANALYTICS_WORKSPACE_ID")
    ids = [_checked_workspace_id(key, part) for part in comma_list(value or "")]
    if single is not None and single.strip():
        ids.insert(0, settings.log_analytics_workspace_id)
    if not ids:
        raise SettingError("LOG_ANALYTICS_WORKSPACE_ID",
                           "is required but not set (or list the workspaces in LOG_ANALYTICS_WORKSPACE_IDS)")
    return tuple(dict.fromkeys(ids))


APIM_ID = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ApiManagement/service/[^/]+"


def _apim_resource_id(_: Settings, key: str, value: str | None) -> str:
    resource = _required(value, key).strip().rstrip("/")
    if not re.fullmatch(APIM_ID, resource, flags=re.IGNORECASE):
        raise SettingError(key, "must look like /subscriptions/<id>/resourceGroups/<rg>/"
                           f"providers/Microsoft.ApiManagement/service/<name>, got {resource!r}")
    return resource


def _page_token_key(settings: Settings, key: str, _: str | None) -> bytes:
    """Derived (HMAC with a fixed label) from PAGE_TOKEN_SECRET, else API_KEY: never the API key itself."""
    secret = _secret_value(settings, key)
    if secret is not None and len(secret) < 16:
        raise SettingError(key, "must be at least 16 characters")
    if secret is None:
        secret = _secret_value(settings, "API_KEY")
    if secret is None:
        raise SettingError(key, "is needed to sign page tokens when API_KEY is not set")
    return hmac.new(secret.encode(), b"chargeback/page-token/v1", hashlib.sha256).digest()


def _focus_account_id(settings: Settings, _: str, value: str | None) -> str:
    """The value, else the APIM service's ARM id, else ``apim-chargeback/<TABLE_PREFIX>``: an id that says whose
    dataset it is, never a made-up Azure billing account."""
    for candidate in (value, settings.value("APIM_RESOURCE_ID")):
        if candidate and candidate.strip():
            return candidate.strip()
    return f"apim-chargeback/{settings.table_prefix}"


def _focus_account_name(settings: Settings, _: str, value: str | None) -> str:
    if value and value.strip():
        return value.strip()
    service = (settings.value("APIM_RESOURCE_ID") or "").strip().rstrip("/").rsplit("/", 1)[-1]
    return f"APIM chargeback ({service})" if service else "APIM chargeback"


def _container_url(_: Settings, key: str, value: str | None) -> str | None:
    """A blob container URL (``https://<account>.blob.core.windows.net/<container>[/<folder>...]``); http only
    for a loopback emulator (Azurite).  Unset = no container."""
    if value is None or not value.strip():
        return None
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)) \
            or not parts.path.strip("/") or parts.query:
        raise SettingError(key, "must be a blob container URL, https://<account>.blob.core.windows.net/<container>"
                                "[/<folder>] (http only for a local emulator), without a query")
    return url


def _reservations(key: str, value: str | None) -> tuple[tuple[str, int, str, str, str], ...]:
    """``deployment:ptus:term:price:start`` entries, checked for shape (the PTU policy builds them)."""
    entries = []
    for entry in comma_list(value or ""):
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) != 5 or not parts[0] or parts[2] not in ("P1M", "P1Y"):
            raise SettingError(key, f"expected deployment:ptus:P1M|P1Y:pricePerPtu:YYYY-MM-DD, got {entry!r}")
        entries.append((parts[0], _whole_number(key, parts[1]), parts[2], parts[3], parts[4]))
    return tuple(entries)


class Settings:
    """Typed view over a string mapping; every attribute names its key when it fails."""

    # -- log source and storage -------------------------------------------------------------------
    log_source = Setting("LOG_SOURCE", "loganalytics",
                         "`loganalytics` (Azure) or `local` (embedded DuckDB workspace).",
                         _choice("loganalytics", "local"))
    log_analytics_workspace_id = Setting("LOG_ANALYTICS_WORKSPACE_ID", None,
                                         "Workspace (customer) id holding the APIM logs; required for "
                                         "`loganalytics` unless `LOG_ANALYTICS_WORKSPACE_IDS` is set.",
                                         _workspace_id)
    log_analytics_workspace_ids = Setting("LOG_ANALYTICS_WORKSPACE_IDS", None,
                                          "Comma-separated workspace (customer) ids, one per gateway's workspace "
                                          "(e.g. one APIM per region); unioned with `LOG_ANALYTICS_WORKSPACE_ID`, "
                                          "which comes first. One query covers them all.", _workspace_ids)
    apim_services_merged = Setting("APIM_SERVICES_MERGED", "false",
                                   "`true`: usage of same-named subscriptions on several APIM services is summed "
                                   "into one (no service dimension); `false`: kept apart per service.", _flag)
    log_analytics_endpoint = Setting("LOG_ANALYTICS_ENDPOINT", "https://api.loganalytics.io",
                                     "Log Analytics query endpoint (sovereign clouds differ).", _url)
    log_query_timeout_seconds = Setting("LOG_QUERY_TIMEOUT_SECONDS", "180",
                                        "Server timeout of one log query (max 600).", _positive_int(600))
    log_query_max_retries = Setting("LOG_QUERY_MAX_RETRIES", "3",
                                    "Retries of a throttled (429, honouring Retry-After), failed (5xx) or "
                                    "timed-out log query.", _bounded_int(0, 10))
    local_workspace_path: Setting[Path] = Setting(
        "LOCAL_WORKSPACE_PATH", ".local/workspace.duckdb",
        "DuckDB file used as the workspace when `LOG_SOURCE=local`.", _path(required=True), local_only=True)
    tables_endpoint = Setting("TABLES_ENDPOINT", None,
                              "Table service URL, used with managed identity (Azure).", _url)
    tables_connection_string = Setting("TABLES_CONNECTION_STRING", None,
                                       "Table Storage connection string (Azurite locally); wins over "
                                       "TABLES_ENDPOINT.", _optional_text, secret=True, local_only=True)
    table_prefix = Setting("TABLE_PREFIX", "chargeback", "Prefix of every table name (letters and digits).",
                           _table_prefix)
    # -- rollup -------------------------------------------------------------------------------------------
    rollup_schedule = Setting("ROLLUP_SCHEDULE", "0 */15 * * * *", "NCRONTAB schedule of the rollup timer.",
                              _text)
    rollup_lookback = Setting("ROLLUP_LOOKBACK_MINUTES", "120",
                              "How far before the watermark each run re-aggregates (late log ingestion).", _minutes)
    rollup_ingestion_delay = Setting("ROLLUP_INGESTION_DELAY_MINUTES", "5",
                                     "Most recent minutes left out of a run (not yet ingested).", _minutes)
    usage_source = Setting("USAGE_SOURCE", "auto",
                           "`llmlog` (ApiManagementGatewayLlmLog), `gatewaybody` (logged response bodies only) "
                           "or `auto` (LLM log per request, else the body).", _choice("llmlog", "gatewaybody", "auto"))
    probe_subscription_id = Setting("PROBE_SUBSCRIPTION_ID", None,
                                    "APIM subscription used only by synthetic probes; its traffic is rolled up "
                                    "as `synthetic-probe` and left out of chargeback.",
                                    lambda _, __, value: value or "")
    rollup_max_chunk = Setting("ROLLUP_MAX_CHUNK_HOURS", "24",
                               "Longest time range one log query covers; longer windows are split.",
                               _hours(24 * 31))
    rollup_max_lag = Setting("ROLLUP_MAX_LAG_MINUTES", "60",
                             "Watermark lag beyond which /api/health says `degraded` (503) and one lag alert goes "
                             "out (recovery when it catches up).", lambda s, k, v: timedelta(minutes=_positive_int(
                                 7 * 24 * 60)(s, k, v)))
    telemetry_console = Setting("TELEMETRY_CONSOLE", "false",
                                "`true`: print spans and metrics on the console (local runs; Azure sends them to "
                                "Application Insights when its connection string is set).", _flag, local_only=True)
    # -- report API ---------------------------------------------------------------------------------------
    api_auth = Setting("API_AUTH", "apikey",
                       "`functionkey` (Azure Functions keys guard the API), `apikey` (`x-api-key` header) or "
                       "`entra` (App Service Authentication signs callers in; needs TRUST_APP_SERVICE_AUTH=true).",
                       _choice("apikey", "functionkey", "entra"))
    api_key = Setting("API_KEY", None, "Key the report API expects in `x-api-key` when API_AUTH=apikey.",
                      _long_key, secret=True)
    # -- synthetic probe ----------------------------------------------------------------------------------
    probe_schedule = Setting("PROBE_SCHEDULE", "0 */5 * * * *", "NCRONTAB schedule of the probe timer.", _text)
    probe_endpoint = Setting("PROBE_ENDPOINT", None,
                             "APIM gateway URL the probe calls (`https://<apim>.azure-api.net`); required when "
                             "probing.", _probe_endpoint)
    probe_api_version = Setting("PROBE_API_VERSION", "2024-10-21", "Azure OpenAI `api-version` of the probe calls.",
                                _text)
    probe_deployments = Setting("PROBE_DEPLOYMENTS", None,
                                "Comma-separated deployments to probe; empty = the probe is off.", _deployment_names)
    probe_subscription_key = Setting("PROBE_SUBSCRIPTION_KEY", None,
                                     "APIM subscription key of the probe (a dedicated subscription, so its traffic "
                                     "is known).", _text, secret=True)
    probe_key_header = Setting("PROBE_KEY_HEADER", "api-key",
                               "Header carrying the probe key: `api-key` or `Ocp-Apim-Subscription-Key`.",
                               _probe_key_header)
    probe_marker_header = Setting("PROBE_MARKER_HEADER", "x-chargeback-probe",
                                  "Header set to `1` on every probe request, so chargeback can tell probe traffic "
                                  "apart.", _header_name)
    probe_stream = Setting("PROBE_STREAM", "false",
                           "`false` (plain calls), `true` (streamed, measures time to first token) or `both`.",
                           _choice("false", "true", "both"))
    probe_timeout_seconds = Setting("PROBE_TIMEOUT_SECONDS", "10",
                                    "Timeout of each network wait of one probe call (max 120).", _seconds(120))
    probe_max_retries = Setting("PROBE_MAX_RETRIES", "1", "Retries of a failed probe call (timeouts, 429, 5xx; 0-5).",
                                _bounded_int(0, 5))
    probe_budget_seconds = Setting("PROBE_BUDGET_SECONDS", "120",
                                   "Total time one probe run may take (max 540, under the 10-minute function "
                                   "timeout).", _seconds(540))
    probe_failure_threshold = Setting("PROBE_FAILURE_THRESHOLD", "3",
                                      "Consecutive failed runs of a deployment that open an incident (alert once, "
                                      "recover once).", _positive_int(1000))
    # -- pricing, quotas, alerts, enforcement ---------------------------------------------------------------
    prices_path: Setting[Path | None] = Setting(
        "PRICES_PATH", None, "JSON price file used instead of the shipped `shared/pricing/prices.default.json`.",
        _path(required=False))
    admin_api_key = Setting("ADMIN_API_KEY", None,
                            "Key quota writes expect in `x-api-key` (≥ 16 characters, not API_KEY); unset = no "
                            "writes.", _admin_key, secret=True)
    alert_thresholds = Setting("ALERT_THRESHOLDS", "50,80,100", "Quota alert thresholds in percent, comma-separated.",
                               _thresholds)
    anomaly_detection = Setting("ANOMALY_DETECTION", "true",
                                "`true`: after each scheduled rollup, alert when a subscription's day cost is far "
                                "above its trailing 28 days (median + ANOMALY_THRESHOLD × robust spread).", _flag)
    anomaly_threshold = Setting("ANOMALY_THRESHOLD", "4",
                                "Robust z-score (spread = 1.4826 × MAD) above which a day cost is anomalous.",
                                _positive_decimal)
    anomaly_min_cost = Setting("ANOMALY_MIN_COST", "1.00",
                               "A day must cost at least this much above its median to alarm (so a cent never does).",
                               _positive_decimal)
    alert_webhook_urls = Setting("ALERT_WEBHOOK_URLS", None,
                                 "Generic JSON webhook URLs for quota alerts, comma-separated.", _urls, secret=True)
    alert_teams_urls = Setting("ALERT_TEAMS_URLS", None,
                               "Microsoft Teams incoming-webhook / Workflows URLs for quota alerts, comma-separated.",
                               _urls, secret=True)
    alert_slack_urls = Setting("ALERT_SLACK_URLS", None, "Slack incoming-webhook URLs for quota alerts, "
                               "comma-separated.", _urls, secret=True)
    enforcement_mode = Setting("ENFORCEMENT_MODE", "off",
                               "`off`, `dryrun` (log only) or `on` (suspend an APIM subscription at 100 % of its "
                               "quota).", _choice("off", "dryrun", "on"))
    apim_resource_id = Setting("APIM_RESOURCE_ID", None,
                               "ARM id of the API Management service; required when ENFORCEMENT_MODE is not `off` "
                               "and by `chargeback subscriptions sync`.",
                               _apim_resource_id)
    # -- report API access and paging -------------------------------------------------------------------------
    trust_app_service_auth = Setting("TRUST_APP_SERVICE_AUTH", "false",
                                     "`true` only when App Service Authentication (Entra ID) fronts the app: then "
                                     "the X-MS-CLIENT-PRINCIPAL* headers are trusted and scope each caller to its "
                                     "subscriptions.", _flag)
    page_token_key = Setting("PAGE_TOKEN_SECRET", None,
                             "Secret the usage API's continuation tokens are signed with (HMAC); unset = derived "
                             "from API_KEY.", _page_token_key, secret=True)

    # -- deployment catalog, retail prices, provisioned throughput ----------------------------------------
    aoai_account_ids = Setting("AOAI_ACCOUNT_IDS", None,
                               "Comma-separated ARM ids of the Azure OpenAI accounts whose deployments `chargeback "
                               "deployments sync` (and its timer) reads; empty = no sync.",
                               lambda _, __, value: comma_list(value or ""))
    arm_endpoint = Setting("ARM_ENDPOINT", "https://management.azure.com",
                           "Azure Resource Manager endpoint of the deployment sync (sovereign clouds differ).", _url)
    deployment_sync_schedule = Setting("DEPLOYMENT_SYNC_SCHEDULE", None,
                                       "NCRONTAB schedule of the `deployment_sync` timer; empty = the timer is not "
                                       "registered (off).", _optional_text)
    price_sync_schedule = Setting("PRICE_SYNC_SCHEDULE", None,
                                  "NCRONTAB schedule of the `price_sync` timer (Retail Prices feed); empty = the timer "
                                  "is not registered (off).", _optional_text)
    price_sync_region = Setting("PRICE_SYNC_REGION", None,
                                "ARM region the price sync keeps (e.g. `eastus2`); empty = every region.",
                                lambda _, __, value: (value or "").strip() or None)
    price_sync_currency = Setting("PRICE_SYNC_CURRENCY", "USD",
                                  "Currency of the price sync (the price file's currency is what costs use).", _text)
    retail_prices_url = Setting("RETAIL_PRICES_URL", "https://prices.azure.com/api/retail/prices",
                                "Retail Prices API endpoint (sovereign clouds, tests).", _url)
    ptu_idle_cost = Setting("PTU_IDLE_COST", "unallocated",
                            "Idle provisioned capacity: `unallocated` (an `unallocated-capacity` line per deployment) "
                            "or `spread` (over the month's users, pro rata).", _choice("unallocated", "spread"))
    ptu_reservations = Setting("PTU_RESERVATIONS", None,
                               "PTU reservations, comma-separated `deployment:ptus:P1M|P1Y:pricePerPtu:YYYY-MM-DD` "
                               "(price for the whole term; empty = list rate per PTU-hour).",
                               lambda _, key, value: _reservations(key, value))

    # -- FinOps outputs: FOCUS export, reconciliation with the bill --------------------------------------
    focus_billing_account_id = Setting("FOCUS_BILLING_ACCOUNT_ID", None,
                                       "FOCUS `BillingAccountId` of the exported rows; empty = APIM_RESOURCE_ID, else "
                                       "`apim-chargeback/<TABLE_PREFIX>`.", _focus_account_id)
    focus_billing_account_name = Setting("FOCUS_BILLING_ACCOUNT_NAME", None,
                                         "FOCUS `BillingAccountName`; empty = `APIM chargeback (<APIM service name>)`.",
                                         _focus_account_name)
    cost_export_container = Setting("COST_EXPORT_CONTAINER", None,
                                    "Blob container URL (optionally with a folder) of the Cost Management exports "
                                    "GET /api/reconciliation reads with the app's identity; empty = that route is off.",
                                    _container_url)

    def __init__(self, values: Mapping[str, str], base_dir: Path | None = None) -> None:
        self._values = dict(values)
        self.base_dir = base_dir or Path.cwd()
        self._parsed: dict[str, object] = {}

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
        return Settings({**self._values, **overrides}, self.base_dir)

    def value(self, key: str) -> str | None:
        """The value as given, else the registry default; ``None`` when neither (blank = unset)."""
        given = self._values.get(key)
        if given is not None and given.strip():
            return given
        return SPECS[key].default if key in SPECS else None


SETTINGS: tuple[Setting[Any], ...] = tuple(v for v in vars(Settings).values() if isinstance(v, Setting))
SPECS: dict[str, Setting[Any]] = {spec.name: spec for spec in SETTINGS}
