"""Month rows summed from the period index's day partitions, one response page at a time.

The rollup recomputes a month row from the subscription's stored day rows.  Read one subscription
at a time, that is a round trip per subscription (10,000 a run at 10,000 subscriptions); the period
index (:mod:`shared.adapters.usage_index`) holds every subscription's day rows of a day in one
partition a shard, so a month's days are a query per shard (each a PartitionKey range over the
month's days) returning ~1,000 rows a page.

Only running totals are kept: one per (subscription, key) of the subscriptions asked for, each page
added in and dropped, so memory follows the month rows written (two per subscription with two keys),
not the month's day rows read (31 times that).  The sums are those of
:func:`shared.core.usage.merge` over what ``TableStore.read`` returns for each subscription: the same
names (a row read back as ``usage_row`` reads it) and counters (absent = 0).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.adapters.entity_values import stored_names
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow

Names = tuple[str, str, str, str, str, str]  # the UsageKey's fields, in order


class MonthTotals:
    """Per-key totals of one month's day entities of the ``wanted`` subscriptions (stored names);
    :meth:`add` may be called from several threads at once (one per shard read)."""

    def __init__(self, month: datetime, wanted: frozenset[str], counter_properties: Sequence[str],
                 apart: frozenset[tuple[str, datetime]] = frozenset()) -> None:
        self._month = month
        self._wanted = wanted
        self._apart = apart  # (stored name, day start): entities kept as they are, not summed
        self.apart_entities: list[Mapping[str, Any]] = []
        self._properties = tuple(counter_properties)  # in the order of Counters' fields
        self._totals: dict[Names, list[int]] = {}
        self._lock = threading.Lock()
        self.entities_read = 0

    def add(self, entities: Iterable[Mapping[str, Any]]) -> None:
        """One page of the index's day entities: the wanted subscriptions' counters added in, but those
        of a (subscription, day) set apart, which are kept as they are."""
        found: list[tuple[Names, list[int]]] = []
        kept: list[Mapping[str, Any]] = []
        seen = 0
        for entity in entities:
            seen += 1
            subscription = entity.get("SubscriptionId", "")
            if subscription not in self._wanted:
                continue
            if self._apart and (subscription, entity.get("PeriodStart")) in self._apart:
                kept.append(entity)
                continue
            found.append((stored_names(entity), [int(entity.get(name) or 0) for name in self._properties]))
        with self._lock:
            self.entities_read += seen
            self.apart_entities.extend(kept)
            for names, values in found:
                total = self._totals.get(names)
                if total is None:
                    self._totals[names] = values
                else:
                    for index, value in enumerate(values):
                        total[index] += value

    def rows(self) -> list[UsageRow]:
        """The month rows, in :func:`shared.core.usage.merge`'s order (subscription, then the key)."""
        with self._lock:
            return [UsageRow(Granularity.MONTH, self._month, UsageKey(*names), Counters(*values))
                    for names, values in sorted(self._totals.items())]
