"""Wiring: settings -> adapters -> services.  The only place that chooses implementations."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.tables import TableStore
from shared.ports import LogSource
from shared.services.rollup import WATERMARK_NAME, RollupService
from shared.settings import Settings

if TYPE_CHECKING:  # feature modules (probe, alerts) load only when the feature is used
    from shared.adapters.access_tables import AccessTableStore
    from shared.adapters.alert_outbox import AlertOutboxTable
    from shared.adapters.cost_export_blobs import BlobCostExportStore
    from shared.adapters.deployment_tables import DeploymentTableStore
    from shared.adapters.meter_price_tables import MeterPriceTableStore
    from shared.adapters.probe_tables import ProbeStore
    from shared.adapters.quota_tables import PriceTableStore, QuotaTableStore
    from shared.adapters.rate_override_tables import RateOverrideTableStore
    from shared.adapters.retail_prices import RetailPricesClient
    from shared.adapters.subscription_tables import SubscriptionTableStore
    from shared.adapters.table_access import TableAccess
    from shared.core.costing_rules import PtuPolicy
    from shared.ports import AlertChannel, SubscriptionControl
    from shared.services.alerts import AlertService
    from shared.services.costing import PriceCatalog
    from shared.services.deployment_sync import DeploymentSyncService
    from shared.services.lag_watch import PipelineWatch, QuarantineCounter
    from shared.services.probe import IncidentNotifier, ProbeService
    from shared.services.quarantine_alarm import QuarantineAlarm
    from shared.services.subscription_sync import SubscriptionSyncService


def azure_credential() -> Any:
    """Managed identity in Azure, developer credentials elsewhere.

    Only built when an Azure endpoint is actually configured; local runs (Azurite + DuckDB)
    never create one, so nothing probes the instance-metadata address.
    """
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def log_source(settings: Settings, credential: Any | None = None) -> LogSource:
    if settings.log_source == "local":
        from shared.adapters.local_workspace import LocalWorkspaceSource

        return LocalWorkspaceSource(settings.local_workspace_path)
    from shared.adapters.log_analytics import LogAnalyticsSource

    primary, *additional = settings.log_analytics_workspace_ids
    return LogAnalyticsSource(primary, settings.log_analytics_endpoint,
                              settings.log_query_timeout_seconds, credential or azure_credential(),
                              client_options=log_query_retry_options(settings), additional_workspaces=additional)


def log_query_retry_options(settings: Settings) -> dict[str, Any]:
    """azure-core's retry policy: bounded attempts, exponential backoff, Retry-After honoured
    on 429/503; the read timeout lets the server's own timeout answer first."""
    return {"retry_total": settings.log_query_max_retries, "retry_backoff_factor": 2.0,
            "retry_backoff_max": 60, "read_timeout": settings.log_query_timeout_seconds + 30}


def table_store(settings: Settings, credential: Any | None = None) -> TableStore:
    """The account's table client (connection string locally, managed identity in Azure)."""
    from azure.data.tables import TableServiceClient

    from shared.adapters.table_rest import table_transport

    # Few, quick retries: a timer run should fail visibly rather than hang on a dead endpoint.
    options: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.4, "connection_timeout": 10}
    options["transport"] = table_transport(**options)  # the proxy environment read once per endpoint
    connection_string = settings.tables_connection_string
    if connection_string:
        service = TableServiceClient.from_connection_string(connection_string, **options)
        return TableStore(service, settings.table_prefix, _endpoint_of(connection_string))
    endpoint = settings.tables_endpoint
    service = TableServiceClient(endpoint, credential=credential or azure_credential(), **options)
    return TableStore(service, settings.table_prefix, endpoint)


def _endpoint_of(connection_string: str) -> str:
    """Where a connection string points, without its key."""
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    if "TableEndpoint" in parts:
        return parts["TableEndpoint"]
    if connection_string.strip() == "UseDevelopmentStorage=true":
        return "http://127.0.0.1:10002/devstoreaccount1"
    return f"account {parts.get('AccountName', '?')}"


def rollup_service(settings: Settings, source: LogSource | None = None,
                   store: TableStore | None = None) -> RollupService:
    """The rollup with its writer lease, quarantine (retried each run, one alert per incident)
    and chunk sizing state, all in the usage store's account."""
    from shared.adapters.run_lease import TableLease

    store = store or table_store(settings)
    return RollupService(source or log_source(settings), store, store,
                         lookback=settings.rollup_lookback, ingestion_delay=settings.rollup_ingestion_delay,
                         max_chunk=settings.rollup_max_chunk, usage_source=settings.usage_source,
                         probe_subscription=settings.probe_subscription_id,
                         probe_header=settings.probe_marker_header,
                         merge_apim_services=settings.apim_services_merged,
                         lease=TableLease(store, WATERMARK_NAME), quarantine=store, state=store,
                         on_quarantine=quarantine_alarm(settings, store))


def quarantine_alarm(settings: Settings, store: TableStore | None = None) -> QuarantineAlarm:
    """One alert per quarantine incident, recorded in the alert outbox (delivered by the alert run)."""
    from shared.adapters.quarantine import QuarantineIncidentTable
    from shared.services.quarantine_alarm import QuarantineAlarm

    store = store or table_store(settings)
    return QuarantineAlarm(QuarantineIncidentTable(store), alert_outbox(settings, store))


def probe_store(settings: Settings, credential: Any | None = None) -> ProbeStore:
    """Probe attempts and incident state, in the same storage account (and the same way) as usage rows."""
    from shared.adapters.probe_tables import ProbeStore

    return ProbeStore(table_store(settings, credential), settings.table_prefix)


def probe_service(settings: Settings, store: ProbeStore | None = None,
                  notifier: IncidentNotifier | None = None) -> ProbeService:
    """The synthetic probe through APIM (``openai`` client), results in Table Storage."""
    from shared.adapters.probe_client import OpenAIProber, ProbeTarget
    from shared.services.instrumented import InstrumentedProber
    from shared.services.probe import ProbeService, modes_for

    target = ProbeTarget(endpoint=settings.probe_endpoint, api_version=settings.probe_api_version,
                         subscription_key=settings.probe_subscription_key, key_header=settings.probe_key_header,
                         marker_header=settings.probe_marker_header, timeout_seconds=settings.probe_timeout_seconds,
                         max_retries=settings.probe_max_retries)
    if notifier is None:
        from shared.services.incident_channels import ChannelIncidentNotifier

        channels = alert_channels(settings)
        # No channel configured: the logged error is the alert (App Insights can alert on it).
        notifier = ChannelIncidentNotifier(channels) if channels else None
    return ProbeService(InstrumentedProber(OpenAIProber(target)), store or probe_store(settings), notifier,
                        deployments=settings.probe_deployments, modes=modes_for(settings.probe_stream),
                        failure_threshold=settings.probe_failure_threshold,
                        budget_seconds=settings.probe_budget_seconds)


# -- pricing, quotas, alerts, enforcement (issue #4) ------------------------------------------------
def feature_tables(settings: Settings, store: TableStore | None = None) -> TableAccess:
    """Quota, price, alert and enforcement tables, through the usage store's client and error mapping."""
    from shared.adapters.table_access import TableAccess

    return TableAccess(store or table_store(settings), settings.table_prefix)


def quota_store(settings: Settings, store: TableStore | None = None) -> QuotaTableStore:
    from shared.adapters.quota_tables import QuotaTableStore

    return QuotaTableStore(feature_tables(settings, store))


def price_overrides(settings: Settings, store: TableStore | None = None) -> PriceTableStore:
    from shared.adapters.quota_tables import PriceTableStore

    return PriceTableStore(feature_tables(settings, store))


def price_catalog(settings: Settings, store: TableStore | None = None) -> PriceCatalog:
    """The pricing in force: PRICES_PATH (or the shipped default file) with the prices table laid over
    it (the fallback for uncatalogued deployments), the synced meter book over the shipped one, the
    deployment catalog, negotiated rates and the PTU policy (PTU_IDLE_COST, PTU_RESERVATIONS)."""
    from shared.services.costing import PriceCatalog

    store = store or table_store(settings)
    return PriceCatalog(settings.prices_path, price_overrides(settings, store),
                        meters=meter_price_store(settings, store), deployments=deployment_store(settings, store),
                        rate_overrides=rate_overrides(settings, store), ptu=ptu_policy(settings))


def month_report_keeper(settings: Settings, store: TableStore | None = None,
                        ) -> Callable[[list[datetime]], list[str]]:
    """Renders and keeps the org-wide month CSV of the given months (after a scheduled run)."""
    from shared.adapters.month_report_tables import TableMonthReports
    from shared.adapters.usage_pages import TableUsagePages
    from shared.api.presenters import usage_csv
    from shared.services.month_csv import keep_months

    store = store or table_store(settings)
    catalog = price_catalog(settings, store)
    pages, kept = TableUsagePages(store), TableMonthReports(store)
    return lambda months: keep_months(months, datetime.now(UTC), store, pages, catalog.current_with_fingerprint,
                                      usage_csv, kept)


def meter_price_store(settings: Settings, store: TableStore | None = None) -> MeterPriceTableStore:
    """The synced retail meter book (``<prefix>meterprices``)."""
    from shared.adapters.meter_price_tables import MeterPriceTableStore

    return MeterPriceTableStore(feature_tables(settings, store))


def deployment_store(settings: Settings, store: TableStore | None = None) -> DeploymentTableStore:
    """The deployment catalog's versions (``<prefix>deployments``)."""
    from shared.adapters.deployment_tables import DeploymentTableStore

    return DeploymentTableStore(feature_tables(settings, store))


def rate_overrides(settings: Settings, store: TableStore | None = None) -> RateOverrideTableStore:
    """Negotiated rates per meter family (``<prefix>rateoverrides``)."""
    from shared.adapters.rate_override_tables import RateOverrideTableStore

    return RateOverrideTableStore(feature_tables(settings, store))


def ptu_policy(settings: Settings) -> PtuPolicy:
    """PTU_IDLE_COST and PTU_RESERVATIONS as the costing engine's policy."""
    from shared.services.pricing_admin import ptu_policy_from

    return ptu_policy_from(settings.ptu_idle_cost, settings.ptu_reservations)


def deployment_sync_service(settings: Settings, store: TableStore | None = None,
                            credential: Any | None = None, **client_options: Any) -> DeploymentSyncService:
    """ARM (azure-mgmt-cognitiveservices, the app's credential: managed identity in Azure) -> the catalog."""
    from shared.adapters.arm_deployments import ArmDeploymentSource
    from shared.services.deployment_sync import DeploymentSyncService

    source = ArmDeploymentSource(credential or azure_credential(), settings.arm_endpoint, **client_options)
    return DeploymentSyncService(source, deployment_store(settings, store))


def retail_prices_client(settings: Settings, feed_url: str | None = None) -> RetailPricesClient:
    """The Retail Prices feed (RETAIL_PRICES_URL, or ``feed_url``): public, no credential."""
    from shared.adapters.retail_prices import RetailPricesClient

    return RetailPricesClient(feed_url or settings.retail_prices_url)


def alert_outbox(settings: Settings, store: TableStore | None = None) -> AlertOutboxTable:
    from shared.adapters.alert_outbox import AlertOutboxTable

    return AlertOutboxTable(feature_tables(settings, store))


def alert_channels(settings: Settings) -> list[AlertChannel]:
    from shared.adapters.webhooks import channels_from
    from shared.services.instrumented import InstrumentedChannel

    urls = (settings.alert_webhook_urls, settings.alert_teams_urls, settings.alert_slack_urls)
    return [InstrumentedChannel(channel) for channel in channels_from(*urls)]  # a span per delivery


def subscription_control(settings: Settings, credential: Any | None = None) -> SubscriptionControl | None:
    """``None`` when enforcement is off; a logger for ``dryrun``; ARM (with a credential) only for ``on``."""
    from shared.adapters.apim_management import ArmSubscriptionControl, DryRunSubscriptionControl

    mode = settings.enforcement_mode
    if mode == "off":
        return None
    if mode == "dryrun":
        return DryRunSubscriptionControl()
    return ArmSubscriptionControl(settings.apim_resource_id, credential or azure_credential())


def alert_service(settings: Settings, store: TableStore | None = None,
                  channels: list[AlertChannel] | None = None,
                  control: SubscriptionControl | None = None, **options: Any) -> AlertService:
    """Quota evaluation, spend anomalies, outbox delivery, enforcement; ``options`` go to ``AlertService``
    (clock, sleep...)."""
    from shared.adapters.alert_outbox import EnforcementLedgerTable
    from shared.core.anomalies import AnomalyRule
    from shared.services.alerts import AlertService
    from shared.services.anomalies import AnomalyDetector

    store = store or table_store(settings)
    if settings.anomaly_detection and "anomalies" not in options:
        rule = AnomalyRule(threshold=settings.anomaly_threshold, min_excess=settings.anomaly_min_cost)
        options["anomalies"] = AnomalyDetector(store, rule)
    catalog = price_catalog(settings, store)
    mode = settings.enforcement_mode
    return AlertService(store, quota_store(settings, store), alert_outbox(settings, store),
                        alert_channels(settings) if channels is None else channels, catalog.current,
                        thresholds=settings.alert_thresholds, ingestion_delay=settings.rollup_ingestion_delay,
                        enforcement_mode=mode,
                        control=control or subscription_control(settings),
                        ledger=EnforcementLedgerTable(feature_tables(settings, store)) if mode != "off" else None,
                        **options)


# -- report API access (issue #6) ------------------------------------------------------------------
def access_store(settings: Settings, store: TableStore | None = None) -> AccessTableStore:
    """Principal -> subscriptions grants (``<prefix>access``), through the usage store's client."""
    from shared.adapters.access_tables import AccessTableStore

    return AccessTableStore(feature_tables(settings, store))


# -- FinOps outputs: cost centers, reconciliation with the bill --------------------------------------
def subscription_store(settings: Settings, store: TableStore | None = None) -> SubscriptionTableStore:
    """The APIM subscription directory (``<prefix>subscriptions``): cost centers, owners, tags."""
    from shared.adapters.subscription_tables import SubscriptionTableStore

    return SubscriptionTableStore(feature_tables(settings, store))


def subscription_sync_service(settings: Settings, store: TableStore | None = None, credential: Any | None = None,
                              **client_options: Any) -> SubscriptionSyncService:
    """ARM (azure-mgmt-apimanagement, the app's credential: managed identity in Azure) -> the directory."""
    from shared.adapters.arm_subscriptions import ArmSubscriptionSource
    from shared.services.subscription_sync import SubscriptionSyncService

    source = ArmSubscriptionSource(credential or azure_credential(), settings.arm_endpoint, **client_options)
    return SubscriptionSyncService(source, subscription_store(settings, store))


def cost_export_store(settings: Settings, credential: Any | None = None) -> BlobCostExportStore | None:
    """The container Cost Management exports land in (COST_EXPORT_CONTAINER); ``None`` when unset.
    Azurite's emulator URL signs with its published key; anything else with the app's identity."""
    from shared.adapters.cost_export_blobs import BlobCostExportStore, container_address

    url = settings.cost_export_container
    if url is None:
        return None
    if container_address(url).emulator:
        return BlobCostExportStore(url)
    return BlobCostExportStore(url, credential or azure_credential())


# -- the pipeline watching itself: health, lag alerts, telemetry -----------------------------------
def quarantine_counter(settings: Settings, store: TableStore | None = None) -> QuarantineCounter | None:
    """The rows Table Storage refused, kept in ``<prefix>quarantine`` (counted by the usage store):
    health, the status each run stores and the ``quarantined_rows`` metric report this count."""
    return store or table_store(settings)


def pipeline_watch(settings: Settings, store: TableStore | None = None,
                   channels: list[AlertChannel] | None = None, **options: Any) -> PipelineWatch:
    """Status of each run, pipeline gauges, and the lag alert (through the alert channels)."""
    from shared.adapters.pipeline_state import OutboxBacklogTable, PipelineStateTable
    from shared.services.lag_watch import ChannelLagNotifier, PipelineWatch

    store = store or table_store(settings)
    notifier = ChannelLagNotifier(alert_channels(settings) if channels is None else channels)
    return PipelineWatch(store, PipelineStateTable(store), notifier, max_lag=settings.rollup_max_lag,
                         backlog=OutboxBacklogTable(feature_tables(settings, store)),
                         quarantine=quarantine_counter(settings, store), **options)


def configure_telemetry(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Install the process's telemetry once: Application Insights when ``APPLICATIONINSIGHTS_CONNECTION_STRING``
    is set (the Functions host sets it in Azure), console spans with ``TELEMETRY_CONSOLE=true``, else none.

    Called by the triggers on their first invocation: the OpenTelemetry packages are imported here,
    never at import time (cold start).  A broken exporter is logged and the pipeline runs without it.
    """
    global _telemetry_configured
    from shared.services import telemetry

    telemetry.attach_invocation_filter()
    if _telemetry_configured:
        return
    _telemetry_configured = True
    env = os.environ if environ is None else environ
    connection_string = (env.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or "").strip()
    try:
        console = settings.telemetry_console
        if not connection_string and not console:
            return
        from shared.adapters.otel import azure_monitor, console_exporters

        telemetry.install(azure_monitor(connection_string, env) if connection_string else console_exporters())
    except Exception:  # telemetry must never stop the pipeline it reports on
        logging.getLogger(__name__).exception("telemetry not configured; running without it")


_telemetry_configured = False
