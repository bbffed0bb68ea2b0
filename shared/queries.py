"""The ``.kql`` files in ``queries/`` and the columns the code reads from each.

Both engines (Log Analytics and the local DuckDB workspace) run the same files; the contract
here is what both must return, and results are cast to these Kusto types whatever the engine
produced (duckdb-kql returns 128-bit sums where Kusto returns long).
"""

from __future__ import annotations

from collections.abc import Mapping
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
}

CONTRACTS: Mapping[str, Mapping[str, str]] = {
    "usage_by_subscription": USAGE_COLUMNS,
    "usage_from_gateway_body": USAGE_COLUMNS,
}


@cache
def load(name: str) -> Query:
    path = QUERIES_DIR / f"{name}.kql"
    return Query(name, path.read_text(encoding="utf-8"), CONTRACTS.get(name, {}))


def _cast(kql_type: str, value: Any) -> Any:
    if value is None:
        return None
    if kql_type in ("long", "int"):
        return int(value)
    if kql_type == "real":
        return float(value)
    if kql_type == "bool":
        return bool(value)
    if kql_type == "string":
        return str(value)
    if kql_type == "datetime":
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if not isinstance(value, datetime):
            raise TypeError(f"not a datetime: {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


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
    index = {name: columns.index(name) for name in query.columns}
    try:
        return [{name: _cast(kql_type, row[index[name]]) for name, kql_type in query.columns.items()} for row in rows]
    except (TypeError, ValueError, IndexError) as exc:
        raise QueryContractError(f"query {query.name} returned a value of the wrong type: {exc}") from exc
