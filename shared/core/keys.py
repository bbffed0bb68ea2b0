"""Table Storage keys built from untrusted names (subscription ids, model names).

PartitionKey/RowKey may not contain ``/ \\ # ?`` or control characters and are capped at 1 KiB
(512 UTF-16 characters).
Names are percent-encoded into a safe alphabet; a long name keeps a readable prefix plus a hash so
keys stay unique and short.  The original names are stored as properties, so nothing needs to be
decoded from a key.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from shared.core.usage import Granularity, UsageKey

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~@:+=,;!$()*")
# Characters of one encoded name. The 1 KiB key limit counts UTF-16, i.e. 512 characters (Azurite
# refuses a 600-character RowKey): a period code and three parts of 120 stay under it.
MAX_PART = 120
SEPARATOR = "|"  # not in _SAFE, so parts can never run into each other
GRANULARITY_CODE = {Granularity.HOUR: "h", Granularity.DAY: "d", Granularity.MONTH: "m"}


def encode_part(name: str) -> str:
    encoded = "".join(ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in name)
    if len(encoded) <= MAX_PART:
        return encoded
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]
    return f"{encoded[:MAX_PART - 34]}~~{digest}"


def decode_part(encoded: str) -> str:
    """Inverse of :func:`encode_part` for names that were not shortened."""
    raw = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == "%":
            raw.append(int(encoded[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(encoded[i].encode("ascii"))
            i += 1
    return raw.decode("utf-8")


def partition_key(subscription_id: str) -> str:
    return encode_part(subscription_id) or "%00"


def period_code(granularity: Granularity, start: datetime) -> str:
    """Sortable text of a period: ``h|2026-11-25T13``, ``d|2026-11-25``, ``m|2026-11``."""
    fmt = {Granularity.HOUR: "%Y-%m-%dT%H", Granularity.DAY: "%Y-%m-%d", Granularity.MONTH: "%Y-%m"}[granularity]
    return f"{GRANULARITY_CODE[granularity]}{SEPARATOR}{start.strftime(fmt)}"


def row_key(granularity: Granularity, start: datetime, key: UsageKey) -> str:
    parts = (period_code(granularity, start), encode_part(key.model), encode_part(key.deployment),
             encode_part(key.product_id))
    return SEPARATOR.join(parts)


def period_range(granularity: Granularity, start: datetime, end: datetime) -> tuple[str, str]:
    """RowKey bounds ``[low, high)`` selecting every row whose period starts in ``[start, end)``."""
    return period_code(granularity, granularity.ceil(start)), period_code(granularity, granularity.ceil(end))
