"""Wiring: settings -> adapters -> services.  The only place that chooses implementations."""

from __future__ import annotations

from typing import Any

from shared.adapters.tables import TableStore
from shared.ports import LogSource
from shared.services.rollup import RollupService
from shared.settings import Settings


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

    return LogAnalyticsSource(settings.log_analytics_workspace_id, settings.log_analytics_endpoint,
                              settings.log_query_timeout_seconds, credential or azure_credential())


def table_store(settings: Settings, credential: Any | None = None) -> TableStore:
    from azure.data.tables import TableServiceClient

    # Few, quick retries: a timer run should fail visibly rather than hang on a dead endpoint.
    options: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.4, "connection_timeout": 10}
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
    store = store or table_store(settings)
    return RollupService(source or log_source(settings), store, store,
                         lookback=settings.rollup_lookback, ingestion_delay=settings.rollup_ingestion_delay,
                         max_chunk=settings.rollup_max_chunk)
