"""Synthetic usage rows (what the rollup writes) for the Table Storage benches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from shared.core.usage import Counters, Granularity, UsageKey, UsageRow

MODEL_KEYS: tuple[tuple[str, str], ...] = (("gpt-4o-2024-08-06", "gpt-4o"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"))


def subscription_id(n: int) -> str:
    return f"sub-{n:05d}"


def rows(granularity: Granularity, subscriptions: range, starts: list[datetime],
         keys: tuple[tuple[str, str], ...] = MODEL_KEYS) -> Iterator[UsageRow]:
    """One row per subscription x period start x model key, with deterministic counters."""
    for s in subscriptions:
        for i, start in enumerate(starts):
            for k, (model, deployment) in enumerate(keys):
                n = 1 + (s * 31 + i * 7 + k * 3) % 97
                yield UsageRow(granularity, start, UsageKey(subscription_id(s), f"product-{s % 7}", model, deployment),
                               Counters(requests=n, prompt_tokens=n * 900, completion_tokens=n * 300,
                                        total_tokens=n * 1200, error_requests=n // 20))


def hours(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(count)]


def days(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(days=d) for d in range(count)]


def months(year: int, count: int = 12) -> list[datetime]:
    from datetime import UTC

    return [datetime(year, m, 1, tzinfo=UTC) for m in range(1, count + 1)]
