"""The period index: day and month usage rows stored a second time, keyed by period.

The usage table is keyed by subscription, so a read of *every* subscription's month is a RowKey
range over all partitions: the service walks every partition of the whole history to find one
month.  The index table (``<prefix>usageindex``) holds the same entities keyed the other way:
PartitionKey = a *shard* and the period (``s07|m|2026-11``, ``s07|d|2026-11-30``; the period as in
the usage RowKey), RowKey = the usage row's PartitionKey and RowKey joined by a space (below every
character of an encoded key, so a partition's rows come in the usage table's order: subscription,
then the rest of the key).  An all-subscription day or month read is then one PartitionKey range
per shard, whose cost follows the rows returned and not the years of history beside them.

Why shards: a period's rows of every subscription in one partition is one partition written by every
run (20,000 entities a run at 10,000 subscriptions), and a partition takes about 2,000 entities/s
(the Table Storage scalability target; Azurite even scans the partition for each entity it stores).
A subscription's shard is a fixed hash of its usage PartitionKey (:func:`shard_of`), so
``INDEX_SHARDS`` partitions share each period; a reader asks each shard (in parallel) and, where it
needs the usage table's order (the usage report's paged reader), merges them by RowKey
(:mod:`shared.adapters.usage_pages`).

Beside them, *touched marks*: one per (subscription, day), PartitionKey ``s07|t|2026-11-30`` (the
subscription's shard, ``t``, the day; never inside a period range), RowKey the subscription's usage
PartitionKey, written by the rollup before that subscription's first hourly row of that day: with
the day's index partitions, a few reads tell which subscriptions may hold hours of a day
(:mod:`shared.services.stored_hours`).  Marks are not period rows: the period reads and ``rebuild``
never see them, and a mark too many only costs a read.  Marks written by the previous layout (one
partition, ``~index``, RowKey ``touched|d|2026-11-30 <subscription key>``) are still read.

Hour rows are not indexed: they are 24x the day rows, so indexing them would double the largest
write of every run, and an all-subscription hour read is bounded by the report's range anyway.

The index is written in the same store write as the usage rows (:meth:`TableStore.upsert`: one
partition per transaction, each an idempotent replace), so a rerun converges on both tables alike.
``chargeback index rebuild`` writes it again from the usage table (after an upgrade, or to repair
it) and removes index entities whose usage row is gone.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from shared.core.keys import (
    KEY_DIGEST,
    LONG_MARK,
    SEPARATOR,
    name_digest,
    partition_key,
    period_code,
    period_range,
    prefix_range,
    storable_name,
)
from shared.core.months import next_month
from shared.core.usage import Granularity

INDEXED = (Granularity.DAY, Granularity.MONTH)
INDEXED_VALUES = frozenset(granularity.value for granularity in INDEXED)
JOIN = " "  # sorts below every character an encoded key holds (shared.core.keys)
MAX_INDEX_KEY = 512  # UTF-16 units of a key (Azurite's limit; keys are ASCII here)
REBUILD_BATCH = 5_000  # entities written at a time by a rebuild (memory stays flat at any history)


def index_table_name(prefix: str) -> str:
    return f"{prefix}usageindex"


# 16 partitions a period: 16 x 2,000 entities/s is past the account's 20,000 transactions/s, so the
# partition is no longer the bound; an all-subscription read is 16 queries (8 at once).  Changing it
# moves every entity: the completeness marker names the layout, so an index of another layout is
# not read until ``chargeback index rebuild`` has written this one.
INDEX_SHARDS = 16
SHARDS = tuple(f"s{number:02d}" for number in range(INDEX_SHARDS))
READS_IN_FLIGHT = 8  # shard queries of one read at once (each mostly waits on the service)
TOUCHED_CODE = "t"  # after the period codes d and m: a touched partition is never inside a period range


def shard_of(usage_partition_key: str) -> str:
    """The shard of a subscription's rows: a fixed hash of its usage PartitionKey (CRC-32: the same in
    every process and version, unlike ``hash()``)."""
    return SHARDS[zlib.crc32(usage_partition_key.encode()) % INDEX_SHARDS]


def index_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """The index copy of a usage entity (same properties, keys turned around)."""
    row_key: str = entity["RowKey"]
    period = SEPARATOR.join(row_key.split(SEPARATOR, 2)[:2])  # ``d|2026-11-30`` (the code holds one separator)
    return {**entity, "PartitionKey": f"{shard_of(entity['PartitionKey'])}{SEPARATOR}{period}",
            "RowKey": _fitted(f"{entity['PartitionKey']}{JOIN}{row_key}")}


def period_of(index_partition: str) -> str:
    """The period code of an index partition (``s07|d|2026-11-30`` -> ``d|2026-11-30``)."""
    return index_partition.split(SEPARATOR, 1)[1]


def _fitted(key: str) -> str:
    """The joined key, or, past the key limit, its head and ``%~`` + a hash of the whole (as
    ``shared.core.keys`` shortens a long name).  Only rows whose every name is near the 120-character
    part limit and that name an APIM service get there; the head keeps subscription and period
    first, so the index order still goes subscription by subscription."""
    if len(key) <= MAX_INDEX_KEY:
        return key
    return f"{key[:MAX_INDEX_KEY - len(LONG_MARK) - KEY_DIGEST]}{LONG_MARK}{name_digest(key)[:KEY_DIGEST]}"


def single_period(granularity: Granularity, start: datetime, end: datetime) -> bool:
    """Whether ``[start, end)`` holds at most one period start: one partition a shard, which the
    paged reader merges into the usage table's own order (a longer range comes period by period)."""
    first, last = granularity.ceil(start), granularity.ceil(end)
    following = next_month(first) if granularity is Granularity.MONTH else first + timedelta(days=1)
    return granularity in INDEXED and last <= following


Read = tuple[str, dict[str, str]]  # (filter, parameters) of one query


def index_reads(granularity: Granularity, start: datetime, end: datetime) -> list[Read]:
    """The index reads of every row whose period starts in ``[start, end)``: one PartitionKey range
    per shard."""
    low, high = period_range(granularity, start, end)
    return [("PartitionKey ge @low and PartitionKey lt @high",
             {"low": f"{shard}{SEPARATOR}{low}", "high": f"{shard}{SEPARATOR}{high}"}) for shard in SHARDS]


# The index is read only once it is known to be complete: it was created with the usage table
# (a fresh install), or `chargeback index rebuild` wrote every period again.  An installation that
# already had usage rows when the index arrived, or whose index has another layout, keeps scanning,
# correct if slower, until then.
META_PARTITION = "~index"  # sorts after every shard partition (s..|...): never inside a read's range
COMPLETE = f"complete{SEPARATOR}{INDEX_SHARDS}-shards"  # the previous layout's marker was ``complete``


def complete_marker() -> dict[str, Any]:
    return {"PartitionKey": META_PARTITION, "RowKey": COMPLETE}


def touched_entity(subscription_id: str, day: datetime) -> dict[str, Any]:
    """The mark that ``subscription_id`` has (or is about to have) hourly rows on ``day``."""
    subscription_key = partition_key(subscription_id)
    return {"PartitionKey": _touched_partition(shard_of(subscription_key), day), "RowKey": _fitted(subscription_key),
            "SubscriptionId": storable_name(subscription_id)}


def touched_reads(day: datetime) -> list[Read]:
    """The reads of one day's marks: the day's touched partition of each shard, and the previous
    layout's RowKey range of the meta partition (marks an older version wrote)."""
    low, high = prefix_range(f"{LEGACY_TOUCHED}{SEPARATOR}{period_code(Granularity.DAY, day)}{JOIN}")
    legacy = ("PartitionKey eq @meta and RowKey ge @low and RowKey lt @high",
              {"meta": META_PARTITION, "low": low, "high": high})
    return [*(("PartitionKey eq @marks", {"marks": _touched_partition(shard, day)}) for shard in SHARDS), legacy]


def _touched_partition(shard: str, day: datetime) -> str:
    return f"{shard}{SEPARATOR}{TOUCHED_CODE}{SEPARATOR}{day.strftime('%Y-%m-%d')}"


LEGACY_TOUCHED = "touched"  # RowKey head of the previous layout's marks in the meta partition
