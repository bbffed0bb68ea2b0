"""The small interfaces services depend on; adapters implement them, tests may fake them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.core.usage import Granularity, UsageRow
from shared.queries import Query


class LogSource(Protocol):
    """Runs a query file with bound parameters and returns only its (aggregated) result rows."""

    def run(self, query: Query, parameters: Mapping[str, object]) -> list[dict[str, Any]]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Watermark:
    value: datetime | None
    etag: str | None  # None: no watermark stored yet


class UsageRepository(Protocol):
    def upsert(self, rows: Iterable[UsageRow]) -> int: ...

    def read(self, subscription_id: str, granularity: Granularity, start: datetime,
             end: datetime) -> list[UsageRow]: ...

    def read_all(self, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]: ...


class WatermarkRepository(Protocol):
    def get(self, name: str) -> Watermark: ...

    def advance(self, name: str, previous: Watermark, value: datetime) -> Watermark: ...


Rows = Sequence[Mapping[str, Any]]
