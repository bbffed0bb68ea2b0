"""The ``.kql`` files in ``queries/`` and the columns the code reads from each.

Both engines (Log Analytics and the local DuckDB workspace) run the same files; the contract
here is what both must return, and results are cast to these Kusto types whatever the engine
produced (duckdb-kql returns 128-bit sums where Kusto returns long).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from shared.errors import QueryContractError

QUERIES_DIR = Path(__file__).resolve().parent.parent / "queries"


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    columns: Mapping[str, str] = field(default_factory=dict)  # result column -> Kusto type


USAGE_COLUMNS: Mapping[str, str] = {
    "PeriodStart": "datetime",
    "SubscriptionId": "string",
    "ProductId": "string",
    "Model": "string",
    "Deployment": "string",
    "Requests": "long",
    "PromptTokens": "long",
    "CompletionTokens": "long",
    "TotalTokens": "long",
    "CachedTokens": "long",
    "StreamedRequests": "long",
    "ErrorRequests": "long",
    "UnmeteredRequests": "long",
    "UnmeteredStreamed": "long",
    "UnmeteredTruncated": "long",
    # Token kinds nested in the counts above, as Counters nests them (shared/core/usage.py).
    "ReasoningTokens": "long",
    "AudioPromptTokens": "long",
    "CachedAudioTokens": "long",
    "AudioCompletionTokens": "long",
    "CacheWriteTokens": "long",
    # The gateway's APIM service (lower-cased name from the log row's _ResourceId; "" without one).
    "ApimService": "string",
    # The tier that served the requests: "priority" when the response said so, "" otherwise (billed standard).
    "ServiceTier": "string",
}

CONTRACTS: Mapping[str, Mapping[str, str]] = {
    "usage_by_subscription": USAGE_COLUMNS,
    "usage_from_gateway_body": USAGE_COLUMNS,
}


@cache
def load(name: str) -> Query:
    path = QUERIES_DIR / f"{name}.kql"
    return Query(name, path.read_text(encoding="utf-8"), CONTRACTS.get(name, {}))


def _nullable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _to_datetime(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_is(value: Any) -> Any:
    return value


# The Python type of each Kusto type; a column is converted only when its values are not all of it.
_NATIVE_TYPES: dict[str, type] = {"long": int, "int": int, "real": float, "bool": bool, "string": str}
_CASTS: dict[str, Callable[[Any], Any]] = {
    **{kql_type: _nullable(native) for kql_type, native in _NATIVE_TYPES.items()}, "datetime": _to_datetime}


def conform(query: Query, columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as dicts of the contract's columns, each cast to its Kusto type.

    A missing contract column is an error (a renamed column must break loudly, not read as null).
    """
    if not query.columns:
        return [dict(zip(columns, row, strict=True)) for row in rows]
    missing = [name for name in query.columns if name not in columns]
    if missing:
        raise QueryContractError(
            f"query {query.name} did not return column(s) {', '.join(missing)}; it returned {', '.join(columns)}")
    by_column = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    converted = []
    try:
        for name, kql_type in query.columns.items():
            values = by_column[columns.index(name)]
            # Column by column: a column whose values already have the Python type (ints from
            # DuckDB, strs from either engine) is taken as it is; 10,000-row results are common.
            native = _NATIVE_TYPES.get(kql_type)
            if kql_type == "datetime":  # few distinct values (hours): convert each once
                distinct = {value: _to_datetime(value) for value in set(values)}
                values = tuple(map(distinct.__getitem__, values))
            elif native is None or not set(map(type, values)) <= {native, type(None)}:
                values = tuple(map(_CASTS.get(kql_type, _as_is), values))
            converted.append(values)
    except (TypeError, ValueError) as exc:
        raise QueryContractError(f"query {query.name} returned a value of the wrong type: {exc}") from exc
    names = list(query.columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*converted, strict=True)]
