"""Log Analytics through ``azure-monitor-query``.

A partial result is an error: a rollup that took it as complete would write low totals and move
the watermark past the missing rows.

Several workspaces (one per region's gateway, say) are one query: it is sent to the first and names
the others in ``additional_workspaces``, so Log Analytics unions each table over all of them and
the query's aggregates cover every gateway (its ``ApimService`` column tells them apart).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.core.kql import bind_as_defaults
from shared.errors import LogSourceError, PartialResultError
from shared.queries import Query, conform

# The query's own filters are exact; the timespan only lets the service prune, so it is wider
# than any join margin a query uses.
TIMESPAN_MARGIN = timedelta(hours=1)


class LogAnalyticsSource:
    def __init__(self, workspace_id: str, endpoint: str, server_timeout_seconds: int,
                 credential: Any, client_options: Mapping[str, Any] | None = None,
                 query_options: Mapping[str, Any] | None = None,
                 additional_workspaces: Sequence[str] = ()) -> None:
        self.workspace_id = workspace_id
        self.additional_workspaces = tuple(additional_workspaces)
        self.endpoint = endpoint
        self.server_timeout_seconds = server_timeout_seconds
        self._credential = credential
        self._client_options = dict(client_options or {})
        self._query_options = dict(query_options or {})  # e.g. enforce_https=False for a local fake
        self._client: Any = None

    def describe(self) -> str:
        if self.additional_workspaces:
            return f"Log Analytics workspaces {', '.join((self.workspace_id, *self.additional_workspaces))}"
        return f"Log Analytics workspace {self.workspace_id}"

    def _logs_client(self) -> Any:
        if self._client is None:
            from azure.monitor.query import LogsQueryClient

            self._client = LogsQueryClient(self._credential, endpoint=self.endpoint, **self._client_options)
        return self._client

    def run(self, query: Query, parameters: Mapping[str, object]) -> list[dict[str, Any]]:
        from azure.core.exceptions import AzureError
        from azure.monitor.query import LogsQueryPartialResult

        try:
            text = bind_as_defaults(query.text, parameters)
        except ValueError as exc:
            raise LogSourceError(f"query {query.name}: {exc}") from exc
        several = {"additional_workspaces": list(self.additional_workspaces)} if self.additional_workspaces else {}
        try:
            response = self._logs_client().query_workspace(
                self.workspace_id, text, timespan=_timespan(parameters),
                server_timeout=self.server_timeout_seconds, **several, **self._query_options)
        except AzureError as exc:
            raise LogSourceError(f"query {query.name} failed on {self.describe()}: {_reason(exc)}") from exc
        if isinstance(response, LogsQueryPartialResult):
            raise PartialResultError(
                f"query {query.name} returned a partial result on {self.describe()} "
                f"({_reason(response.partial_error)}); nothing was written, narrow the window "
                "(ROLLUP_MAX_CHUNK_HOURS) or raise LOG_QUERY_TIMEOUT_SECONDS")
        if not response.tables:
            return []
        table = response.tables[0]
        return conform(query, list(table.columns), [tuple(row) for row in table.rows])


def _timespan(parameters: Mapping[str, object]) -> tuple[datetime, datetime] | None:
    start, end = parameters.get("window_start"), parameters.get("window_end")
    if isinstance(start, datetime) and isinstance(end, datetime):
        return (start - TIMESPAN_MARGIN, end + TIMESPAN_MARGIN)
    return None


def _reason(error: Any) -> str:
    """A one-line reason without request headers or tokens."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(error)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else type(error).__name__
    return f"{code}: {first_line}" if code else first_line
