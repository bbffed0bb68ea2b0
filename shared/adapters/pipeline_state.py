"""The pipeline's own state in ``<prefix>state``, beside the rollup watermark (PartitionKey
``pipeline``), and the outbox backlog count.

RowKey ``status``: what the last scheduled run saw, merged in by each run (a failed run leaves the
last success in place).  RowKey ``lag-incident``: the lag incident, written with an ETag condition
so two runs cannot both announce it.  ``/api/health`` reads both with point reads only.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from shared.adapters.alert_outbox import ALERTS
from shared.adapters.entity_values import plain, utc
from shared.adapters.table_access import TableAccess
from shared.adapters.tables import TableStore
from shared.core.alerting import FAILED, PENDING
from shared.core.pipeline import LagIncident, PipelineStatus
from shared.errors import NotFoundError

PARTITION = "pipeline"
STATUS_KEY = "status"
INCIDENT_KEY = "lag-incident"
STATUS_PROPERTIES = {"last_run_at": "LastRunAt", "last_success_at": "LastSuccessAt",
                     "last_failure_at": "LastFailureAt", "last_error": "LastError", "outbox_pending": "OutboxPending",
                     "outbox_failed": "OutboxFailed", "quarantined_rows": "QuarantinedRows"}
INCIDENT_PROPERTIES = {"open": "Open", "opened_at": "OpenedAt", "recovered_at": "RecoveredAt",
                       "watching_since": "WatchingSince", "lag_seconds": "LagSeconds", "pending": "Pending"}


def _from_entity(entity: Any, properties: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, column in properties.items():
        value = entity.get(column)
        values[field] = utc(value) if isinstance(value, datetime) else plain(value)
    return values


class PipelineStateTable:
    """Implements ``PipelineStateRepository`` (:mod:`shared.services.lag_watch`)."""

    def __init__(self, tables: TableStore) -> None:
        self._tables = tables

    def _get(self, row_key: str) -> Any | None:
        table = self._tables.table(self._tables.state_table)
        try:
            return self._tables.call(lambda: table.get_entity(PARTITION, row_key))
        except NotFoundError:
            return None

    def status(self) -> PipelineStatus:
        entity = self._get(STATUS_KEY)
        return PipelineStatus() if entity is None else PipelineStatus(**_from_entity(entity, STATUS_PROPERTIES))

    def record_status(self, status: PipelineStatus) -> None:
        from azure.data.tables import UpdateMode

        table = self._tables.table(self._tables.state_table)
        entity = {"PartitionKey": PARTITION, "RowKey": STATUS_KEY}
        entity.update({STATUS_PROPERTIES[k]: v for k, v in asdict(status).items() if v is not None})
        self._tables.call(lambda: table.upsert_entity(entity, mode=UpdateMode.MERGE))

    def get_incident(self) -> tuple[LagIncident, str | None]:
        entity = self._get(INCIDENT_KEY)
        if entity is None:
            return LagIncident(), None
        values = _from_entity(entity, INCIDENT_PROPERTIES)
        values["open"] = bool(values["open"])
        values["pending"] = values["pending"] if values["pending"] in ("opened", "recovered") else None
        values["lag_seconds"] = None if values["lag_seconds"] is None else float(values["lag_seconds"])
        return LagIncident(**values), str(entity.metadata["etag"])

    def put_incident(self, incident: LagIncident, etag: str | None) -> str:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._tables.table(self._tables.state_table)
        entity = {"PartitionKey": PARTITION, "RowKey": INCIDENT_KEY}
        # Table Storage has no null: an absent property reads back as None.
        entity.update({INCIDENT_PROPERTIES[k]: v for k, v in asdict(incident).items() if v is not None})
        if etag is None:
            metadata = self._tables.call(lambda: table.create_entity(entity))
        else:
            metadata = self._tables.call(lambda: table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified))
        return str(metadata["etag"])


class OutboxBacklogTable:
    """Implements ``OutboxBacklog``: one filtered query over the alert outbox, only ``Status`` read."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def backlog(self) -> dict[str, int]:
        table = self._access.table(ALERTS)
        entities = self._access.call(lambda: list(table.query_entities(
            "Status eq @pending or Status eq @failed", parameters={"pending": PENDING, "failed": FAILED},
            select=["Status"])))
        counts = {PENDING: 0, FAILED: 0}
        for entity in entities:
            counts[str(entity["Status"])] += 1
        return counts
