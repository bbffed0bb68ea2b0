"""The alert outbox (``<prefix>alerts``) and the enforcement ledger (``<prefix>enforcement``).

Outbox: PartitionKey = encoded subscription id, RowKey = the alert's deterministic key
(``m|2026-11|threshold|0080``, ``d|2026-11-25|forecast``).  An alert is *created if absent*
before any delivery, so evaluating the same usage again never makes a second alert; delivery state
(status, attempts, last error, channels already served) lives on the same entity and every change
to it is ETag-conditional, so two runs never deliver the same round.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.entity_values import decimal_or_none, int64, plain, utc
from shared.adapters.table_access import TableAccess
from shared.core.alerting import FAILED, PENDING, SENT, Alert
from shared.core.keys import partition_key
from shared.core.quotas import Period
from shared.errors import AlreadyExistsError, ConcurrentUpdateError, StorageError
from shared.ports import OutboxEntry

ALERTS = "alerts"
ENFORCEMENT = "enforcement"
ENFORCEMENT_PARTITION = "enforcement"
MAX_ERROR = 500


def alert_entity(alert: Alert, now: datetime) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": partition_key(alert.subscription_id),
        "RowKey": alert.row_key,
        "AlertId": alert.alert_id,
        "SubscriptionId": alert.subscription_id,
        "Period": alert.period.value,
        "PeriodStart": alert.period_start,
        "PeriodEnd": alert.period_end,
        "Kind": alert.kind,
        "Threshold": alert.threshold,
        "Tokens": int64(alert.tokens),
        "Cost": str(alert.cost),
        "Currency": alert.currency,
        "UnpricedTokens": int64(alert.unpriced_tokens),
        "Percent": str(alert.percent),
        "AsOf": alert.as_of,
        "Status": PENDING,
        "Attempts": 0,
        "LastError": "",
        "Delivered": "",
        "CreatedAt": now,
    }
    optional = {"MaxTokens": None if alert.max_tokens is None else int64(alert.max_tokens),
                "MaxCost": None if alert.max_cost is None else str(alert.max_cost),
                "ProjectedPercent": None if alert.projected_percent is None else str(alert.projected_percent),
                "ProjectedAt": alert.projected_at,
                "BaselineCost": None if alert.baseline_cost is None else str(alert.baseline_cost),
                "AnomalyLimit": None if alert.anomaly_limit is None else str(alert.anomaly_limit)}
    entity.update({k: v for k, v in optional.items() if v is not None})
    return entity


def entry_from(entity: Any) -> OutboxEntry:
    def required_time(name: str) -> datetime:
        moment = utc(entity.get(name))
        if moment is None:
            raise StorageError(f"alert entity {entity.get('RowKey')!r} has no {name}")
        return moment

    max_tokens = plain(entity.get("MaxTokens"))
    alert = Alert(
        subscription_id=str(entity["SubscriptionId"]), period=Period(entity["Period"]),
        period_start=required_time("PeriodStart"), period_end=required_time("PeriodEnd"),
        kind=str(entity["Kind"]), threshold=int(plain(entity["Threshold"])), tokens=int(plain(entity["Tokens"])),
        max_tokens=None if max_tokens is None else int(max_tokens), cost=Decimal(str(entity["Cost"])),
        max_cost=decimal_or_none(entity.get("MaxCost")), currency=str(entity["Currency"]),
        unpriced_tokens=int(plain(entity.get("UnpricedTokens")) or 0), percent=Decimal(str(entity["Percent"])),
        as_of=required_time("AsOf"), projected_percent=decimal_or_none(entity.get("ProjectedPercent")),
        projected_at=utc(entity.get("ProjectedAt")), baseline_cost=decimal_or_none(entity.get("BaselineCost")),
        anomaly_limit=decimal_or_none(entity.get("AnomalyLimit")),
    )
    delivered = frozenset(label for label in str(entity.get("Delivered") or "").split(",") if label)
    return OutboxEntry(alert, str(entity["Status"]), int(plain(entity.get("Attempts")) or 0),
                       str(entity.get("LastError") or ""), delivered, required_time("CreatedAt"),
                       utc(entity.get("SentAt")), utc(entity.get("LeaseUntil")), str(entity.metadata["etag"]))


class AlertOutboxTable:
    """Implements ``AlertOutbox``."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def record(self, alert: Alert, now: datetime) -> bool:
        table = self._access.table(ALERTS)
        entity = alert_entity(alert, now)
        try:
            self._access.call(lambda: table.create_entity(entity))
        except AlreadyExistsError:
            return False  # recorded before: exactly once
        return True

    def deliverable(self, now: datetime, max_attempts: int) -> list[OutboxEntry]:
        table = self._access.table(ALERTS)
        query = "Status eq @pending or ( Status eq @failed and Attempts lt @max )"  # the SDK needs the spaces
        parameters = {"pending": PENDING, "failed": FAILED, "max": max_attempts}
        entities = self._access.call(lambda: list(table.query_entities(query, parameters=parameters)))
        entries = [entry_from(e) for e in entities]
        ready = [e for e in entries if e.lease_until is None or e.lease_until <= now]
        return sorted(ready, key=lambda e: (e.created_at, e.alert.subscription_id, e.alert.row_key))

    def claim(self, entry: OutboxEntry, now: datetime, lease: timedelta) -> OutboxEntry | None:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._access.table(ALERTS)
        patch = {"PartitionKey": partition_key(entry.alert.subscription_id), "RowKey": entry.alert.row_key,
                 "Attempts": entry.attempts + 1, "LeaseUntil": now + lease}
        try:
            metadata = self._access.call(lambda: table.update_entity(
                patch, mode=UpdateMode.MERGE, etag=entry.etag, match_condition=MatchConditions.IfNotModified))
        except ConcurrentUpdateError:
            return None  # another run claimed it since we read it
        return OutboxEntry(entry.alert, entry.status, entry.attempts + 1, entry.last_error, entry.delivered,
                           entry.created_at, entry.sent_at, now + lease, str(metadata["etag"]))

    def finish(self, entry: OutboxEntry, status: str, delivered: frozenset[str], error: str,
               now: datetime) -> OutboxEntry:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._access.table(ALERTS)
        patch: dict[str, Any] = {"PartitionKey": partition_key(entry.alert.subscription_id),
                                 "RowKey": entry.alert.row_key, "Status": status,
                                 "Delivered": ",".join(sorted(delivered)), "LastError": error[:MAX_ERROR],
                                 # progress within a round (pending) keeps the lease; an ended round frees it
                                 "LeaseUntil": entry.lease_until if status == PENDING and entry.lease_until else now}
        if status == SENT:
            patch["SentAt"] = now
        metadata = self._access.call(lambda: table.update_entity(
            patch, mode=UpdateMode.MERGE, etag=entry.etag, match_condition=MatchConditions.IfNotModified))
        return OutboxEntry(entry.alert, status, entry.attempts, error[:MAX_ERROR], delivered, entry.created_at,
                           now if status == SENT else entry.sent_at, patch["LeaseUntil"], str(metadata["etag"]))

    def list_alerts(self, subscription_id: str | None, status: str | None, limit: int) -> list[OutboxEntry]:
        table = self._access.table(ALERTS)
        clauses, parameters = [], {}
        if subscription_id is not None:
            clauses.append("PartitionKey eq @pk")
            parameters["pk"] = partition_key(subscription_id)
        if status is not None:
            clauses.append("Status eq @status")
            parameters["status"] = status
        if clauses:
            query = " and ".join(clauses)
            entities = self._access.call(lambda: list(table.query_entities(query, parameters=parameters)))
        else:
            entities = self._access.call(lambda: list(table.list_entities()))
        found = (entry_from(e) for e in entities)  # the key answers for its own subscription only
        entries = sorted((e for e in found if subscription_id in (None, e.alert.subscription_id)),
                         key=lambda e: (e.created_at, e.alert.row_key),
                         reverse=True)
        return entries[:limit]


class EnforcementLedgerTable:
    """Implements ``EnforcementLedger``: the subscriptions this app suspended, and in which mode."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def suspended(self) -> dict[str, str]:
        table = self._access.table(ENFORCEMENT)
        entities = self._access.call(lambda: list(table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": ENFORCEMENT_PARTITION})))
        return {str(e["SubscriptionId"]): str(e["Mode"]) for e in entities}

    def mark(self, subscription_id: str, mode: str, reason: str, now: datetime) -> None:
        from azure.data.tables import UpdateMode

        table = self._access.table(ENFORCEMENT)
        entity = {"PartitionKey": ENFORCEMENT_PARTITION, "RowKey": partition_key(subscription_id),
                  "SubscriptionId": subscription_id, "Mode": mode, "Reason": reason[:MAX_ERROR], "SuspendedAt": now}
        self._access.call(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def clear(self, subscription_id: str) -> None:
        table = self._access.table(ENFORCEMENT)
        key = partition_key(subscription_id)
        self._access.call(lambda: table.delete_entity(ENFORCEMENT_PARTITION, key))
