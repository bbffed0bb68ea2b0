"""Probe attempts and incident state in Azure Table Storage.

``<prefix>probes``: PartitionKey = encoded deployment, RowKey = ``<UTC timestamp, microseconds>|<mode>|<run>``
(sortable, so a time range is one RowKey range query per deployment).
``<prefix>probestate``: PartitionKey ``incident``, RowKey = encoded deployment; written with an ETag
condition so two probe runs cannot both announce the same incident.
Every filter is parameterized; no value is ever formatted into filter text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.adapters.entity_values import plain
from shared.adapters.tables import TableStore
from shared.core.keys import encode_part
from shared.core.probe import IncidentState, ProbeAttempt
from shared.errors import NotFoundError

T = TypeVar("T")
STATE_PARTITION = "incident"


def probe_partition(deployment: str) -> str:
    return encode_part(deployment) or "%00"


def probe_row_key(at: datetime, mode: str, run_id: str) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}|{mode}|{encode_part(run_id)}"


def time_bound(moment: datetime) -> str:
    """RowKey prefix of ``moment``: ``RowKey ge bound(start) and RowKey lt bound(end)`` selects [start, end)."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def attempt_entity(a: ProbeAttempt) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": probe_partition(a.deployment),
        "RowKey": probe_row_key(a.at, a.mode, a.run_id),
        "At": a.at.astimezone(UTC), "Deployment": a.deployment, "Mode": a.mode, "Success": a.success,
        "LatencyMs": float(a.latency_ms), "RunId": a.run_id, "Tries": a.tries,
    }
    optional = {"Status": a.status, "TtftMs": None if a.ttft_ms is None else float(a.ttft_ms), "Model": a.model,
                "PromptTokens": a.prompt_tokens, "CompletionTokens": a.completion_tokens, "Region": a.region,
                "RequestId": a.request_id, "Error": a.error}
    entity.update({k: v for k, v in optional.items() if v is not None})  # Table Storage has no null
    return entity


def attempt_from(entity: dict[str, Any]) -> ProbeAttempt:
    at = entity["At"]
    return ProbeAttempt(
        at=at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC), deployment=entity["Deployment"],
        mode=entity["Mode"], success=bool(entity["Success"]), status=_int(entity.get("Status")),
        latency_ms=float(entity["LatencyMs"]), run_id=entity["RunId"], tries=_int(entity.get("Tries")) or 1,
        ttft_ms=_float(entity.get("TtftMs")), model=entity.get("Model"),
        prompt_tokens=_int(entity.get("PromptTokens")), completion_tokens=_int(entity.get("CompletionTokens")),
        region=entity.get("Region"), request_id=entity.get("RequestId"), error=entity.get("Error"))


def state_entity(deployment: str, state: IncidentState) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": STATE_PARTITION, "RowKey": probe_partition(deployment),
                              "Deployment": deployment, "ConsecutiveFailures": state.consecutive_failures,
                              "Open": state.open}
    optional = {"OpenedAt": state.opened_at, "LastSuccess": state.last_success, "LastFailure": state.last_failure,
                "LastError": state.last_error, "Pending": state.pending}
    entity.update({k: v for k, v in optional.items() if v is not None})
    return entity


def state_from(entity: dict[str, Any]) -> IncidentState:
    def moment(name: str) -> datetime | None:
        value = entity.get(name)
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)  # type: ignore[no-any-return]

    pending = entity.get("Pending")
    return IncidentState(consecutive_failures=_int(entity.get("ConsecutiveFailures")) or 0,
                         open=bool(entity.get("Open")), opened_at=moment("OpenedAt"),
                         last_success=moment("LastSuccess"), last_failure=moment("LastFailure"),
                         last_error=entity.get("LastError"),
                         pending=pending if pending in ("opened", "recovered") else None)


def _int(value: Any) -> int | None:
    value = plain(value)
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    value = plain(value)
    return None if value is None else float(value)


class ProbeStore:
    """Implements ``ProbeRepository`` (:mod:`shared.services.probe`) over one storage account."""

    def __init__(self, tables: TableStore, prefix: str) -> None:
        # The usage store's account client and SDK-error mapping: probe tables fail the same way.
        self._tables = tables
        self.probes_table = f"{prefix}probes"
        self.state_table = f"{prefix}probestate"

    def describe(self) -> str:
        return self._tables.describe()

    def _table(self, name: str) -> Any:
        return self._tables.table(name)

    def _call(self, operation: Callable[[], T]) -> T:
        return self._tables.call(operation)

    def add(self, attempts: Iterable[ProbeAttempt]) -> int:
        return self._tables.replace_entities(self.probes_table, (attempt_entity(a) for a in attempts))

    def attempts(self, deployments: Iterable[str] | None, start: datetime, end: datetime) -> list[ProbeAttempt]:
        """Attempts started in ``[start, end)``, of the given deployments (None = all), oldest first."""
        table = self._table(self.probes_table)
        bounds = {"low": time_bound(start), "high": time_bound(end)}
        entities: list[dict[str, Any]] = []
        if deployments is None:
            entities = self._call(lambda: list(table.query_entities("RowKey ge @low and RowKey lt @high",
                                                                    parameters=bounds)))
        else:
            for name in dict.fromkeys(deployments):
                params = {**bounds, "pk": probe_partition(name)}
                entities += [e for e in self._call(lambda p=params: list(table.query_entities(  # type: ignore[misc]
                    "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high", parameters=p)))
                    if e.get("Deployment") == name]  # the key answers for its own deployment only
        return sorted((attempt_from(e) for e in entities), key=lambda a: (a.at, a.deployment, a.mode))

    # -- incident state ---------------------------------------------------------------------------
    def get_state(self, deployment: str) -> tuple[IncidentState, str | None]:
        """The stored state and its ETag; a fresh state and ``None`` when there is none yet."""
        table = self._table(self.state_table)
        try:
            entity = self._call(lambda: table.get_entity(STATE_PARTITION, probe_partition(deployment)))
        except NotFoundError:
            return IncidentState(), None
        return state_from(entity), str(entity.metadata["etag"])

    def put_state(self, deployment: str, state: IncidentState, etag: str | None) -> str:
        """Store ``state`` only if nobody changed it since ``etag`` was read (``None``: must not exist yet).

        Raises :class:`ConcurrentUpdateError` otherwise.
        """
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._table(self.state_table)
        entity = state_entity(deployment, state)
        if etag is None:
            metadata = self._call(lambda: table.create_entity(entity))
        else:
            metadata = self._call(lambda: table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                                              match_condition=MatchConditions.IfNotModified))
        return str(metadata["etag"])

    def states(self) -> dict[str, IncidentState]:
        table = self._table(self.state_table)
        entities = self._call(lambda: list(table.query_entities("PartitionKey eq @pk",
                                                                parameters={"pk": STATE_PARTITION})))
        return {str(e.get("Deployment")): state_from(e) for e in entities}
